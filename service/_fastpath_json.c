/* The answer's JSON, written straight into one bytes object (functions of service._fastpath;
 * their exact Python twins are in service/answer.py, and tests compare the two byte for byte).
 *
 *   render(text, spans, pieces, attention) -> bytes
 *       The JSON array of a text's token objects {"text", "start", "end", "attention", "piece"},
 *       with text = text[start:end]. attention: a JSON array of as many numbers (orjson's
 *       rendering of the float32 weights), copied as written.
 *
 *   render_predictions(encoded, labels, probabilities, attention) -> bytes
 *       A request's predictions array: per text {"label", "score", "probabilities", "tokens",
 *       "truncated"}. encoded: the texts' Encoded (text, spans, pieces, truncated);
 *       probabilities: a JSON array of one array of len(labels) numbers per text; attention: one
 *       array per text (as render's), or None for answers without "tokens". The label is the
 *       first largest probability (the numbers read as Python reads them); numbers are copied as
 *       written.
 *
 * Why: as dicts written by orjson, a prediction cost ~3 µs of event-loop CPU, a third of the loop's
 * own work per text (docs/PERFORMANCE.md).
 */
#include "_fastpath.h"

/* Writes the JSON array of a text's token objects, their attention values being the JSON numbers
 * in [a, a_end) (an array's inside, copied as written). 0, or -1 with an exception set. */
static int put_tokens(Buf *out, PyObject *text, const char *spans, Py_ssize_t spans_len, PyObject *pieces, const char *a,
                      const char *a_end) {
    if (!PyUnicode_Check(text) || !PyList_Check(pieces)) {
        PyErr_SetString(PyExc_TypeError, "text must be a str and pieces a list");
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(pieces), len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (spans_len != n * 8) {
        PyErr_Format(PyExc_ValueError, "%zd spans for %zd pieces", spans_len / 8, n);
        return -1;
    }
    if (reserve(out, 2) < 0)
        return -1;
    PUT_LITERAL(out, "[");
    for (Py_ssize_t k = 0; k < n; k++) {
        int32_t span[2];
        memcpy(span, spans + 8 * k, 8);
        PyObject *piece = PyList_GET_ITEM(pieces, k);
        if (span[0] < 0 || span[1] < span[0] || span[1] > len) {
            PyErr_Format(PyExc_ValueError, "token %zd spans %d..%d of a %zd-character text", k, span[0], span[1], len);
            return -1;
        }
        if (!PyUnicode_Check(piece)) {
            PyErr_SetString(PyExc_TypeError, "pieces must be str");
            return -1;
        }
        const char *v = a;
        while (a < a_end && *a != ',')
            a++;
        if (a == v) {
            PyErr_Format(PyExc_ValueError, "attention has no value for token %zd", k);
            return -1;
        }
        Py_ssize_t plen = PyUnicode_GET_LENGTH(piece);
        if (reserve(out, 80 + (a - v) + 6 * ((Py_ssize_t)(span[1] - span[0]) + plen)) < 0)
            return -1;
        if (k)
            PUT_LITERAL(out, ",");
        PUT_LITERAL(out, "{\"text\":\"");
        put_json_chars(out, kind, data, span[0], span[1]);
        PUT_LITERAL(out, "\",\"start\":");
        put_uint(out, (uint32_t)span[0]);
        PUT_LITERAL(out, ",\"end\":");
        put_uint(out, (uint32_t)span[1]);
        PUT_LITERAL(out, ",\"attention\":");
        put(out, v, a - v);
        PUT_LITERAL(out, ",\"piece\":\"");
        put_json_chars(out, PyUnicode_KIND(piece), PyUnicode_DATA(piece), 0, plen);
        PUT_LITERAL(out, "\"}");
        if (k + 1 < n) { /* a comma before the next value */
            if (a == a_end) {
                PyErr_Format(PyExc_ValueError, "attention has %zd values for %zd tokens", k + 1, n);
                return -1;
            }
            a++;
        }
    }
    if (a != a_end) {
        PyErr_Format(PyExc_ValueError, "attention has more values than the %zd tokens", n);
        return -1;
    }
    if (reserve(out, 1) < 0)
        return -1;
    PUT_LITERAL(out, "]");
    return 0;
}

PyObject *fastpath_render(PyObject *self, PyObject *args) {
    PyObject *text, *pieces, *result = NULL;
    Py_buffer spans, att;
    if (!PyArg_ParseTuple(args, "Uy*O!y*:render", &text, &spans, &PyList_Type, &pieces, &att))
        return NULL;
    Buf out = {NULL, 0, 0};
    const char *a = att.buf;
    if (att.len < 2 || a[0] != '[' || a[att.len - 1] != ']')
        PyErr_SetString(PyExc_ValueError, "attention must be a JSON array");
    else if (put_tokens(&out, text, spans.buf, spans.len, pieces, a + 1, a + att.len - 1) == 0)
        result = PyBytes_FromStringAndSize(out.p, out.n);
    PyMem_Free(out.p);
    PyBuffer_Release(&spans);
    PyBuffer_Release(&att);
    return result;
}

/* The next inner array of a JSON array of arrays of numbers ("[[1,2],[3]]"), from *at (its
 * opening "[" or the "," before the next): [*from, *to) its inside; *at moves past it. */
static int next_row(const char **at, const char *end, const char **from, const char **to) {
    const char *p = *at;
    if (p < end && (*p == '[' || *p == ','))
        p++;
    if (p >= end || *p != '[') {
        PyErr_SetString(PyExc_ValueError, "fewer rows than texts, or not a JSON array of arrays");
        return -1;
    }
    *from = ++p;
    while (p < end && *p != ']')
        p++;
    if (p >= end) {
        PyErr_SetString(PyExc_ValueError, "unterminated row");
        return -1;
    }
    *to = p;
    *at = p + 1;
    return 0;
}

static PyObject *s_text, *s_spans, *s_pieces, *s_truncated; /* attribute names, interned */

/* One prediction object (see render_predictions). val: room for 2 × len(labels) pointers. */
static int put_prediction(Buf *out, PyObject *enc, PyObject *labels, const char *p, const char *p_end, const char *a,
                          const char *a_end, int with_tokens, const char **val) {
    Py_ssize_t nl = PyList_GET_SIZE(labels), best = -1;
    const char **val_end = val + nl; /* where each number of the row starts and ends */
    double top = 0;
    for (Py_ssize_t k = 0; k < nl; k++) { /* the values, and the first largest (Python's max) */
        val[k] = p;
        char *stop;
        double x = PyOS_string_to_double(p, &stop, NULL);
        if (x == -1.0 && PyErr_Occurred())
            return -1;
        if (stop > p_end || (stop < p_end && *stop != ',') || (k + 1 == nl) != (stop == p_end)) {
            PyErr_Format(PyExc_ValueError, "a row of probabilities must hold %zd numbers", nl);
            return -1;
        }
        val_end[k] = stop;
        if (best < 0 || x > top)
            best = k, top = x;
        p = stop + 1;
    }
    Py_ssize_t room = 64;
    for (Py_ssize_t k = 0; k < nl; k++) {
        PyObject *l = PyList_GET_ITEM(labels, k);
        if (!PyUnicode_Check(l)) {
            PyErr_SetString(PyExc_TypeError, "labels must be str");
            return -1;
        }
        room += 8 + 6 * PyUnicode_GET_LENGTH(l) + (val_end[k] - val[k]);
    }
    PyObject *lb = PyList_GET_ITEM(labels, best);
    if (reserve(out, 2 * room) < 0)
        return -1;
    PUT_LITERAL(out, "{\"label\":\"");
    put_json_chars(out, PyUnicode_KIND(lb), PyUnicode_DATA(lb), 0, PyUnicode_GET_LENGTH(lb));
    PUT_LITERAL(out, "\",\"score\":");
    put(out, val[best], val_end[best] - val[best]);
    PUT_LITERAL(out, ",\"probabilities\":{");
    for (Py_ssize_t k = 0; k < nl; k++) {
        PyObject *l = PyList_GET_ITEM(labels, k);
        if (k)
            PUT_LITERAL(out, ",");
        PUT_LITERAL(out, "\"");
        put_json_chars(out, PyUnicode_KIND(l), PyUnicode_DATA(l), 0, PyUnicode_GET_LENGTH(l));
        PUT_LITERAL(out, "\":");
        put(out, val[k], val_end[k] - val[k]);
    }
    PUT_LITERAL(out, "}");
    PyObject *text = NULL, *spans = NULL, *pieces = NULL, *truncated = NULL;
    int r = -1;
    if ((truncated = PyObject_GetAttr(enc, s_truncated)) == NULL)
        goto done;
    if (with_tokens) {
        if ((text = PyObject_GetAttr(enc, s_text)) == NULL || (spans = PyObject_GetAttr(enc, s_spans)) == NULL ||
            (pieces = PyObject_GetAttr(enc, s_pieces)) == NULL)
            goto done;
        if (!PyBytes_Check(spans)) {
            PyErr_SetString(PyExc_TypeError, "spans must be bytes");
            goto done;
        }
        PUT_LITERAL(out, ",\"tokens\":");
        if (put_tokens(out, text, PyBytes_AS_STRING(spans), PyBytes_GET_SIZE(spans), pieces, a, a_end) < 0)
            goto done;
    }
    if (reserve(out, 24) < 0)
        goto done;
    int is_truncated = PyObject_IsTrue(truncated);
    if (is_truncated < 0)
        goto done;
    if (is_truncated)
        PUT_LITERAL(out, ",\"truncated\":true}");
    else
        PUT_LITERAL(out, ",\"truncated\":false}");
    r = 0;
done:
    Py_XDECREF(text);
    Py_XDECREF(spans);
    Py_XDECREF(pieces);
    Py_XDECREF(truncated);
    return r;
}

PyObject *fastpath_render_predictions(PyObject *self, PyObject *args) {
    PyObject *encs, *labels, *att_obj, *result = NULL;
    Py_buffer probs, att = {0};
    if (!PyArg_ParseTuple(args, "O!O!y*O:render_predictions", &PyList_Type, &encs, &PyList_Type, &labels, &probs, &att_obj))
        return NULL;
    int with_tokens = att_obj != Py_None;
    if (with_tokens && PyObject_GetBuffer(att_obj, &att, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&probs);
        return NULL;
    }
    Buf out = {NULL, 0, 0};
    const char *p = probs.buf, *p_end = p + probs.len, *a = att.buf, *a_end = a + att.len;
    /* Our own references to the texts and labels: reading an attribute may run Python code. */
    PyObject *texts = PySequence_Tuple(encs), *names = PyList_GetSlice(labels, 0, PyList_GET_SIZE(labels));
    const char **val = names ? PyMem_New(const char *, 2 * PyList_GET_SIZE(names) + 1) : NULL;
    if (texts == NULL || names == NULL || val == NULL) {
        if (val == NULL && !PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(texts);
    if (!PyList_GET_SIZE(names)) {
        PyErr_SetString(PyExc_ValueError, "no labels");
        goto done;
    }
    if (reserve(&out, 2) < 0)
        goto done;
    PUT_LITERAL(&out, "[");
    if (!n) { /* no texts: the rows must be empty arrays too */
        if (p_end - p != 2 || memcmp(p, "[]", 2) || (with_tokens && (a_end - a != 2 || memcmp(a, "[]", 2)))) {
            PyErr_SetString(PyExc_ValueError, "more rows than texts");
            goto done;
        }
        p++; /* onto the closing brackets, as after the last row */
        if (with_tokens)
            a++;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *pf, *pt, *af = NULL, *at = NULL;
        if (next_row(&p, p_end, &pf, &pt) < 0 || (with_tokens && next_row(&a, a_end, &af, &at) < 0))
            goto done;
        if (i && (reserve(&out, 1) < 0 || (PUT_LITERAL(&out, ","), 0)))
            goto done;
        if (put_prediction(&out, PyTuple_GET_ITEM(texts, i), names, pf, pt, af, at, with_tokens, val) < 0)
            goto done;
    }
    if (p + 1 != p_end || *p != ']' || (with_tokens && (a + 1 != a_end || *a != ']'))) {
        PyErr_SetString(PyExc_ValueError, "more rows than texts");
        goto done;
    }
    if (reserve(&out, 1) < 0)
        goto done;
    PUT_LITERAL(&out, "]");
    result = PyBytes_FromStringAndSize(out.p, out.n);
done:
    PyMem_Free(out.p);
    PyMem_Free(val);
    Py_XDECREF(texts);
    Py_XDECREF(names);
    PyBuffer_Release(&probs);
    if (with_tokens)
        PyBuffer_Release(&att);
    return result;
}

int fastpath_json_init(void) {
    s_text = PyUnicode_InternFromString("text");
    s_spans = PyUnicode_InternFromString("spans");
    s_pieces = PyUnicode_InternFromString("pieces");
    s_truncated = PyUnicode_InternFromString("truncated");
    return s_text && s_spans && s_pieces && s_truncated ? 0 : -1;
}
