/* What service/_fastpath.c (tokens), _fastpath_json.c (the answer's JSON) and _fastpath_batch.c share: a
 * growable byte buffer and the writers of JSON pieces into it. One extension module, service._fastpath. */
#ifndef FASTPATH_H
#define FASTPATH_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *p;
    Py_ssize_t n, cap;
} Buf;

static inline int reserve(Buf *b, Py_ssize_t extra) {
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
static inline void put_json_chars(Buf *b, int kind, const void *data, Py_ssize_t from, Py_ssize_t to) {
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

/* service/_fastpath_json.c's functions of the module. */
PyObject *fastpath_render(PyObject *self, PyObject *args);
PyObject *fastpath_render_predictions(PyObject *self, PyObject *args);
int fastpath_json_init(void);
PyObject *fastpath_pad(PyObject *self, PyObject *args);      /* service/_fastpath_batch.c */
PyObject *fastpath_cut_runs(PyObject *self, PyObject *args); /* service/_fastpath_batch.c */

#endif
