/* The per-text work of /predict in C (module service._fastpath): splitting plain text into
 * WordPiece tokens and padding a batch here; writing the answer's JSON in service/_fastpath_json.c.
 *
 * Why: in Python each token costs objects and list appends, ~25 tokens per review, and under
 * load the event loop's per-text Python is what keeps the service under the onnxruntime ceiling
 * (docs/PERFORMANCE.md). Here a text's tokens are two compact buffers (ids, spans) and one list of
 * cached piece strings.
 *
 * Each function replaces Python code kept as its exact twin (used when this module is not built,
 * or SENTIMENT_NATIVE is off); tests compare the two on every dataset text and on random strings.
 *
 *   split(low, words, miss, max_length) -> (ids: bytes, spans: bytes, pieces: list[str], truncated)
 *       low: the normalised text (same length as the caller's: one character for one). Words are
 *       runs of ASCII letters and digits, or any other non-space character alone (BERT's
 *       pre-tokenizer on such text); ' ', '\t', '\n', '\r' separate them. Each word's WordPiece
 *       entry comes from `words` (a dict), or from miss(word) when absent: (id, piece) for a word
 *       that is one piece, else a tuple of (id, start, end, piece) within the word. Keeps the
 *       first max_length tokens. ids: int64 per token; spans: int32 (start, end) per token.
 *       Twin: split_words in service/text_tokenizer.py.
 *
 *   split_plain(text, words, miss, max_length, lower, stops, extra) -> split's tuple, or None
 *       The caller's text as is, when the fast path takes all of its characters (ASCII, and the
 *       non-ASCII ones in `extra`, mapped as the normaliser maps them) and none of `stops` (the
 *       first characters of the special tokens): split of its normalised form (without making it,
 *       for ASCII text). None otherwise. Twin: TextTokenizer._fast (its checks, then split).
 *
 *   pad(seqs, pad_id), cut_runs(...): in service/_fastpath_batch.c.
 */
#include "_fastpath.h"

static inline int is_word_char(Py_UCS4 c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static inline int is_space(Py_UCS4 c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

typedef struct {
    Buf ids, spans;
    PyObject *pieces;
    Py_ssize_t count, max_length;
    int truncated;
} Tokens;

/* Appends one token; 1 when it did not fit (the text is truncated), -1 on error. */
static int add_token(Tokens *t, PyObject *id_obj, Py_ssize_t start, Py_ssize_t end, PyObject *piece) {
    if (t->count == t->max_length) {
        t->truncated = 1;
        return 1;
    }
    long long id = PyLong_AsLongLong(id_obj);
    if (id == -1 && PyErr_Occurred())
        return -1;
    if (!PyUnicode_Check(piece)) {
        PyErr_SetString(PyExc_TypeError, "a word entry's piece must be a str");
        return -1;
    }
    if (start < 0 || end < start || end > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "a word entry's span lies outside its word");
        return -1;
    }
    if (reserve(&t->ids, 8) < 0 || reserve(&t->spans, 8) < 0 || PyList_Append(t->pieces, piece) < 0)
        return -1;
    int64_t id64 = (int64_t)id;
    int32_t span[2] = {(int32_t)start, (int32_t)end};
    put(&t->ids, (const char *)&id64, 8);
    put(&t->spans, (const char *)span, 8);
    t->count++;
    return 0;
}

/* One word's entry: (id, piece), or a tuple of (id, start, end, piece) within the word. */
static int add_word(Tokens *t, PyObject *entry, Py_ssize_t at, Py_ssize_t end) {
    if (!PyTuple_Check(entry)) {
        PyErr_SetString(PyExc_TypeError, "a word entry must be a tuple");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(entry);
    if (n == 2 && PyLong_Check(PyTuple_GET_ITEM(entry, 0)))
        return add_token(t, PyTuple_GET_ITEM(entry, 0), at, end, PyTuple_GET_ITEM(entry, 1));
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *sub = PyTuple_GET_ITEM(entry, k);
        if (!PyTuple_Check(sub) || PyTuple_GET_SIZE(sub) != 4) {
            PyErr_SetString(PyExc_TypeError, "a word piece must be a tuple (id, start, end, piece)");
            return -1;
        }
        Py_ssize_t s = PyLong_AsSsize_t(PyTuple_GET_ITEM(sub, 1));
        Py_ssize_t e = PyLong_AsSsize_t(PyTuple_GET_ITEM(sub, 2));
        if ((s == -1 || e == -1) && PyErr_Occurred())
            return -1;
        if (e > end - at) {
            PyErr_SetString(PyExc_ValueError, "a word entry's span lies outside its word");
            return -1;
        }
        int r = add_token(t, PyTuple_GET_ITEM(sub, 0), at + s, at + e, PyTuple_GET_ITEM(sub, 3));
        if (r)
            return r;
    }
    return 0;
}

/* The words of data[0:len] (see split), each through its WordPiece entry, into t. `lower`: the
 * text is ASCII (1-byte kind) and its words are looked up lowercased. */
static int split_words(Tokens *t, PyObject *src, int kind, const void *data, Py_ssize_t len, PyObject *words, PyObject *miss,
                       int lower) {
    Py_ssize_t i = 0;
    while (i < len && !t->truncated) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (is_space(c)) {
            i++;
            continue;
        }
        Py_ssize_t start = i++;
        int upper = c >= 'A' && c <= 'Z';
        if (is_word_char(c))
            while (i < len && is_word_char(c = PyUnicode_READ(kind, data, i)))
                upper |= c >= 'A' && c <= 'Z', i++;
        PyObject *word;
        if (lower && upper) {
            word = PyUnicode_New(i - start, 127);
            if (word == NULL)
                return -1;
            const Py_UCS1 *from = (const Py_UCS1 *)data + start;
            Py_UCS1 *to = PyUnicode_1BYTE_DATA(word);
            for (Py_ssize_t k = 0; k < i - start; k++)
                to[k] = (from[k] >= 'A' && from[k] <= 'Z') ? (Py_UCS1)(from[k] + 32) : from[k];
        } else {
            word = PyUnicode_Substring(src, start, i);
            if (word == NULL)
                return -1;
        }
        PyObject *entry = PyDict_GetItemWithError(words, word); /* borrowed */
        if (entry != NULL)
            Py_INCREF(entry);
        else if (!PyErr_Occurred())
            entry = PyObject_CallOneArg(miss, word); /* may change `words`: we hold our own ref */
        Py_DECREF(word);
        if (entry == NULL)
            return -1;
        int r = add_word(t, entry, start, i);
        Py_DECREF(entry);
        if (r < 0)
            return -1;
    }
    return 0;
}

static PyObject *tokens_result(Tokens *t, int ok) {
    PyObject *result = NULL;
    if (ok == 0)
        result = Py_BuildValue("(y#y#OO)", t->ids.p ? t->ids.p : "", t->ids.n, t->spans.p ? t->spans.p : "", t->spans.n,
                               t->pieces, t->truncated ? Py_True : Py_False);
    PyMem_Free(t->ids.p);
    PyMem_Free(t->spans.p);
    Py_DECREF(t->pieces);
    return result;
}

static PyObject *split(PyObject *self, PyObject *args) {
    PyObject *low, *words, *miss;
    Py_ssize_t max_length;
    if (!PyArg_ParseTuple(args, "UO!On:split", &low, &PyDict_Type, &words, &miss, &max_length))
        return NULL;
    if (max_length < 0) {
        PyErr_SetString(PyExc_ValueError, "max_length must be >= 0");
        return NULL;
    }
    Tokens t = {{NULL, 0, 0}, {NULL, 0, 0}, PyList_New(0), 0, max_length, 0};
    if (t.pieces == NULL)
        return NULL;
    int ok = split_words(&t, low, PyUnicode_KIND(low), PyUnicode_DATA(low), PyUnicode_GET_LENGTH(low), words, miss, 0);
    return tokens_result(&t, ok);
}

/* split for a caller's text as is, when the fast path takes all of it: printable ASCII, '\t',
 * '\n', '\r', and the non-ASCII characters in `extra` (code point -> what the normaliser makes of
 * it: one ASCII character, or itself for punctuation), none of them, before or after that mapping
 * (and lowercasing, when `lower`), in `stops`. Otherwise None: the caller takes its general path.
 * An ASCII text is split as it stands (its words lowercased on the way: offsets do not move); any
 * other is first normalised into a copy of the same length, as str.translate and str.lower do. */
static PyObject *split_plain(PyObject *self, PyObject *args) {
    PyObject *text, *words, *miss, *stops, *extra;
    Py_ssize_t max_length;
    int lower;
    if (!PyArg_ParseTuple(args, "UO!OnpUO!:split_plain", &text, &PyDict_Type, &words, &miss, &max_length, &lower, &stops,
                          &PyDict_Type, &extra))
        return NULL;
    if (max_length < 0) {
        PyErr_SetString(PyExc_ValueError, "max_length must be >= 0");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(stops))
        Py_RETURN_NONE;
    const Py_UCS1 *stop = PyUnicode_1BYTE_DATA(stops);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), nstops = PyUnicode_GET_LENGTH(stops);
    char blocked[128] = {0};
    for (Py_ssize_t k = 0; k < 0x20; k++)
        blocked[k] = !(k == '\t' || k == '\n' || k == '\r');
    blocked[0x7f] = 1;
    for (Py_ssize_t k = 0; k < nstops; k++) {
        blocked[stop[k]] = 1;
        if (lower && stop[k] >= 'a' && stop[k] <= 'z')
            blocked[stop[k] - 32] = 1; /* its uppercase lowers onto it */
    }
    PyObject *low = NULL;
    int ascii = PyUnicode_IS_ASCII(text);
    if (ascii) {
        const Py_UCS1 *data = PyUnicode_1BYTE_DATA(text);
        for (Py_ssize_t k = 0; k < len; k++)
            if (blocked[data[k]])
                Py_RETURN_NONE;
    } else { /* the normalised copy: each character mapped (extra), then lowercased (ASCII only) */
        int kind = PyUnicode_KIND(text);
        const void *data = PyUnicode_DATA(text);
        Py_UCS4 *buf = PyMem_New(Py_UCS4, len ? len : 1);
        if (buf == NULL)
            return PyErr_NoMemory();
        for (Py_ssize_t k = 0; k < len; k++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, k);
            if (c >= 0x80) {
                PyObject *key = PyLong_FromUnsignedLong(c), *to;
                if (key == NULL) {
                    PyMem_Free(buf);
                    return NULL;
                }
                to = PyDict_GetItemWithError(extra, key); /* borrowed */
                Py_DECREF(key);
                if (to == NULL || !PyUnicode_Check(to) || PyUnicode_GET_LENGTH(to) != 1) {
                    PyMem_Free(buf);
                    if (PyErr_Occurred())
                        return NULL;
                    Py_RETURN_NONE; /* a character the fast path does not take */
                }
                c = PyUnicode_READ_CHAR(to, 0);
            } else if (blocked[c]) {
                PyMem_Free(buf);
                Py_RETURN_NONE;
            }
            if (lower && c >= 'A' && c <= 'Z')
                c += 32;
            if (c < 0x80 && blocked[c]) {
                PyMem_Free(buf);
                Py_RETURN_NONE;
            }
            buf[k] = c;
        }
        low = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, len); /* the narrowest kind that holds it */
        PyMem_Free(buf);
        if (low == NULL)
            return NULL;
    }
    Tokens t = {{NULL, 0, 0}, {NULL, 0, 0}, PyList_New(0), 0, max_length, 0};
    if (t.pieces == NULL) {
        Py_XDECREF(low);
        return NULL;
    }
    PyObject *src = ascii ? text : low;
    int ok = split_words(&t, src, PyUnicode_KIND(src), PyUnicode_DATA(src), len, words, miss, ascii && lower);
    Py_XDECREF(low);
    return tokens_result(&t, ok);
}

static PyMethodDef methods[] = {
    {"split", split, METH_VARARGS, "split(low, words, miss, max_length) -> (ids, spans, pieces, truncated)"},
    {"split_plain", split_plain, METH_VARARGS, "split_plain(text, words, miss, max_length, lower, stops, extra) -> split's tuple, or None"},
    {"pad", fastpath_pad, METH_VARARGS, "pad(seqs, pad_id) -> (ids, mask, T)"},
    {"render_predictions", fastpath_render_predictions, METH_VARARGS,
     "render_predictions(encoded, labels, probabilities_json, attention_json) -> bytes"},
    {"render", fastpath_render, METH_VARARGS, "render(text, spans, pieces, attention_json) -> bytes"},
    {"cut_runs", fastpath_cut_runs, METH_VARARGS, "cut_runs(lengths, rows, max_run, max_tokens) -> run starts"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastpath", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastpath(void) {
    if (fastpath_json_init() < 0)
        return NULL;
    return PyModule_Create(&module);
}
