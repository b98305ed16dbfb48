/* The per-token work of /predict in C: splitting plain text into WordPiece tokens, and writing a
 * text's tokens as the answer's JSON.
 *
 * Why: in Python each token costs a dict (text, start, end, attention, piece), two string slices
 * and list appends, ~25 tokens per review. Under load that per-token work was about half the
 * event loop's CPU and crowded the engine thread off its core (docs/PERFORMANCE.md).
 * Here a text's tokens are three compact buffers and one list of cached piece strings, and the
 * answer's token objects are written straight into one bytes object.
 *
 * Both functions are exact replacements for Python code kept in service/text_tokenizer.py (used
 * when this module is not built, or switched off); tests compare the two on every dataset text and
 * on random strings.
 *
 *   split(low, words, miss, max_length) -> (ids: bytes, spans: bytes, pieces: list[str], truncated)
 *       low: the normalised text (same length as the caller's: one character for one). Words are
 *       runs of ASCII letters and digits, or any other non-space character alone (BERT's
 *       pre-tokenizer on such text); ' ', '\t', '\n', '\r' separate them. Each word's WordPiece
 *       entry comes from `words` (a dict), or from miss(word) when absent: (id, piece) for a word
 *       that is one piece, else a tuple of (id, start, end, piece) within the word. Keeps the
 *       first max_length tokens. ids: int64 per token; spans: int32 (start, end) per token.
 *
 *   render(text, spans, pieces, attention) -> bytes
 *       The JSON array of token objects {"text", "start", "end", "attention", "piece"}, with
 *       text = text[start:end]. attention: a JSON array of as many numbers (orjson's rendering of
 *       the float32 weights), copied as written.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *p;
    Py_ssize_t n, cap;
} Buf;

static int reserve(Buf *b, Py_ssize_t extra) {
    if (b->n + extra <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + extra)
        cap *= 2;
    char *p = PyMem_Realloc(b->p, (size_t)cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/* The caller reserved room: these never grow the buffer. */
static inline void put(Buf *b, const char *s, Py_ssize_t n) {
    memcpy(b->p + b->n, s, (size_t)n);
    b->n += n;
}
#define PUT_LITERAL(b, s) put((b), (s), (Py_ssize_t)sizeof(s) - 1)

static inline void put_uint(Buf *b, uint32_t v) {
    char tmp[10];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        b->p[b->n++] = tmp[--k];
}

/* A JSON string's body: UTF-8, with '"', '\\', control characters and lone surrogates escaped.
 * At most 6 bytes per character (\uXXXX): the caller reserves 6 × count. */
static void put_json_chars(Buf *b, int kind, const void *data, Py_ssize_t from, Py_ssize_t to) {
    static const char hex[] = "0123456789abcdef";
    char *o = b->p + b->n;
    for (Py_ssize_t i = from; i < to; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x80) {
            if (c == '"' || c == '\\') {
                *o++ = '\\';
                *o++ = (char)c;
            } else if (c < 0x20) {
                *o++ = '\\';
                switch (c) {
                case '\n': *o++ = 'n'; break;
                case '\r': *o++ = 'r'; break;
                case '\t': *o++ = 't'; break;
                case '\b': *o++ = 'b'; break;
                case '\f': *o++ = 'f'; break;
                default:
                    *o++ = 'u', *o++ = '0', *o++ = '0';
                    *o++ = hex[c >> 4], *o++ = hex[c & 15];
                }
            } else {
                *o++ = (char)c;
            }
        } else if (c < 0x800) {
            *o++ = (char)(0xC0 | (c >> 6));
            *o++ = (char)(0x80 | (c & 0x3F));
        } else if (c >= 0xD800 && c <= 0xDFFF) { /* not encodable as UTF-8: JSON's escape */
            *o++ = '\\', *o++ = 'u';
            *o++ = hex[c >> 12], *o++ = hex[(c >> 8) & 15], *o++ = hex[(c >> 4) & 15], *o++ = hex[c & 15];
        } else if (c < 0x10000) {
            *o++ = (char)(0xE0 | (c >> 12));
            *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (char)(0x80 | (c & 0x3F));
        } else {
            *o++ = (char)(0xF0 | (c >> 18));
            *o++ = (char)(0x80 | ((c >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (char)(0x80 | (c & 0x3F));
        }
    }
    b->n = o - b->p;
}

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
    int kind = PyUnicode_KIND(low);
    const void *data = PyUnicode_DATA(low);
    Py_ssize_t len = PyUnicode_GET_LENGTH(low), i = 0;
    PyObject *result = NULL;
    while (i < len && !t.truncated) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (is_space(c)) {
            i++;
            continue;
        }
        Py_ssize_t start = i++;
        if (is_word_char(c))
            while (i < len && is_word_char(PyUnicode_READ(kind, data, i)))
                i++;
        PyObject *word = PyUnicode_Substring(low, start, i);
        if (word == NULL)
            goto done;
        PyObject *entry = PyDict_GetItemWithError(words, word); /* borrowed */
        if (entry != NULL)
            Py_INCREF(entry);
        else if (!PyErr_Occurred())
            entry = PyObject_CallOneArg(miss, word); /* may change `words`: we hold our own ref */
        Py_DECREF(word);
        if (entry == NULL)
            goto done;
        int r = add_word(&t, entry, start, i);
        Py_DECREF(entry);
        if (r < 0)
            goto done;
    }
    result = Py_BuildValue("(y#y#OO)", t.ids.p ? t.ids.p : "", t.ids.n, t.spans.p ? t.spans.p : "", t.spans.n,
                           t.pieces, t.truncated ? Py_True : Py_False);
done:
    PyMem_Free(t.ids.p);
    PyMem_Free(t.spans.p);
    Py_DECREF(t.pieces);
    return result;
}

static PyObject *render(PyObject *self, PyObject *args) {
    PyObject *text, *pieces;
    Py_buffer spans, att;
    if (!PyArg_ParseTuple(args, "Uy*O!y*:render", &text, &spans, &PyList_Type, &pieces, &att))
        return NULL;
    PyObject *result = NULL;
    Buf out = {NULL, 0, 0};
    Py_ssize_t n = PyList_GET_SIZE(pieces), len = PyUnicode_GET_LENGTH(text);
    const char *a = att.buf, *a_end = (const char *)att.buf + att.len;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (spans.len != n * 8) {
        PyErr_Format(PyExc_ValueError, "%zd spans for %zd pieces", spans.len / 8, n);
        goto done;
    }
    if (att.len < 2 || a[0] != '[' || a_end[-1] != ']') {
        PyErr_SetString(PyExc_ValueError, "attention must be a JSON array");
        goto done;
    }
    a++, a_end--; /* inside the brackets */
    if (reserve(&out, 2) < 0)
        goto done;
    PUT_LITERAL(&out, "[");
    for (Py_ssize_t k = 0; k < n; k++) {
        int32_t span[2];
        memcpy(span, (const char *)spans.buf + 8 * k, 8);
        PyObject *piece = PyList_GET_ITEM(pieces, k);
        if (span[0] < 0 || span[1] < span[0] || span[1] > len) {
            PyErr_Format(PyExc_ValueError, "token %zd spans %d..%d of a %zd-character text", k, span[0], span[1], len);
            goto done;
        }
        if (!PyUnicode_Check(piece)) {
            PyErr_SetString(PyExc_TypeError, "pieces must be str");
            goto done;
        }
        const char *v = a;
        while (a < a_end && *a != ',')
            a++;
        if (a == v) {
            PyErr_Format(PyExc_ValueError, "attention has no value for token %zd", k);
            goto done;
        }
        Py_ssize_t plen = PyUnicode_GET_LENGTH(piece);
        if (reserve(&out, 80 + (a - v) + 6 * ((Py_ssize_t)(span[1] - span[0]) + plen)) < 0)
            goto done;
        if (k)
            PUT_LITERAL(&out, ",");
        PUT_LITERAL(&out, "{\"text\":\"");
        put_json_chars(&out, kind, data, span[0], span[1]);
        PUT_LITERAL(&out, "\",\"start\":");
        put_uint(&out, (uint32_t)span[0]);
        PUT_LITERAL(&out, ",\"end\":");
        put_uint(&out, (uint32_t)span[1]);
        PUT_LITERAL(&out, ",\"attention\":");
        put(&out, v, a - v);
        PUT_LITERAL(&out, ",\"piece\":\"");
        put_json_chars(&out, PyUnicode_KIND(piece), PyUnicode_DATA(piece), 0, plen);
        PUT_LITERAL(&out, "\"}");
        if (k + 1 < n) { /* a comma before the next value */
            if (a == a_end) {
                PyErr_Format(PyExc_ValueError, "attention has %zd values for %zd tokens", k + 1, n);
                goto done;
            }
            a++;
        }
    }
    if (a != a_end) {
        PyErr_Format(PyExc_ValueError, "attention has more values than the %zd tokens", n);
        goto done;
    }
    if (reserve(&out, 1) < 0)
        goto done;
    PUT_LITERAL(&out, "]");
    result = PyBytes_FromStringAndSize(out.p, out.n);
done:
    PyMem_Free(out.p);
    PyBuffer_Release(&spans);
    PyBuffer_Release(&att);
    return result;
}

static PyMethodDef methods[] = {
    {"split", split, METH_VARARGS, "split(low, words, miss, max_length) -> (ids, spans, pieces, truncated)"},
    {"render", render, METH_VARARGS, "render(text, spans, pieces, attention_json) -> bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastpath", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastpath(void) { return PyModule_Create(&module); }
