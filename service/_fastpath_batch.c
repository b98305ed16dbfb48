/* service._fastpath: what the batcher calls (part of the module of service/_fastpath.c).
 *
 *   pad(seqs, pad_id) -> (ids: bytearray, mask: bytearray, T)
 *       Right-padding int64 token-id bytes into (B, T) int64 arrays. Twin: right_pad in
 *       service/padding.py.
 *
 *   cut_runs(lengths, rows, max_run, max_tokens) -> list of run starts
 *       The runs of least total cost for texts of these lengths (sorted, shortest first), by the
 *       cost table rows[T][b] (a run of b texts padded to T tokens; b from 1 to max_run): dynamic
 *       programming over the cut points. A run of more than one text holds at most max_tokens
 *       padded tokens. Twin: cut_runs in service/run_costs.py (same result, same ties).
 */
#include "_fastpath.h"

/* pad(seqs, pad_id) -> (ids, mask, T): seqs are int64 token ids in native byte order (bytes, at
 * least one token each); ids and mask are (B, T) int64 row-major bytearrays, T the longest: each
 * row the sequence then pad_id, mask 1 over the tokens then 0. */
PyObject *fastpath_pad(PyObject *self, PyObject *args) {
    PyObject *seqs;
    long long pad_id;
    if (!PyArg_ParseTuple(args, "O!L:pad", &PyList_Type, &seqs, &pad_id))
        return NULL;
    Py_ssize_t B = PyList_GET_SIZE(seqs), T = 0;
    for (Py_ssize_t r = 0; r < B; r++) {
        PyObject *s = PyList_GET_ITEM(seqs, r);
        if (!PyBytes_Check(s) || PyBytes_GET_SIZE(s) % 8 || !PyBytes_GET_SIZE(s)) {
            PyErr_SetString(PyExc_ValueError, "each sequence must be non-empty int64 bytes");
            return NULL;
        }
        if (PyBytes_GET_SIZE(s) / 8 > T)
            T = PyBytes_GET_SIZE(s) / 8;
    }
    if (!B) {
        PyErr_SetString(PyExc_ValueError, "no sequences to pad");
        return NULL;
    }
    PyObject *ids = PyByteArray_FromStringAndSize(NULL, B * T * 8), *mask = PyByteArray_FromStringAndSize(NULL, B * T * 8);
    if (ids == NULL || mask == NULL) {
        Py_XDECREF(ids);
        Py_XDECREF(mask);
        return NULL;
    }
    int64_t *io = (int64_t *)PyByteArray_AS_STRING(ids), *mo = (int64_t *)PyByteArray_AS_STRING(mask);
    for (Py_ssize_t r = 0; r < B; r++, io += T, mo += T) {
        PyObject *s = PyList_GET_ITEM(seqs, r);
        Py_ssize_t n = PyBytes_GET_SIZE(s) / 8, k;
        memcpy(io, PyBytes_AS_STRING(s), (size_t)n * 8);
        for (k = 0; k < n; k++)
            mo[k] = 1;
        for (k = n; k < T; k++)
            io[k] = pad_id, mo[k] = 0;
    }
    return Py_BuildValue("(NNn)", ids, mask, T);
}


PyObject *fastpath_cut_runs(PyObject *self, PyObject *args) {
    PyObject *lengths, *rows;
    Py_ssize_t max_run, max_tokens;
    if (!PyArg_ParseTuple(args, "O!O!nn:cut_runs", &PyList_Type, &lengths, &PyList_Type, &rows, &max_run, &max_tokens))
        return NULL;
    if (max_run < 1 || max_tokens < 1) {
        PyErr_SetString(PyExc_ValueError, "max_run and max_tokens must be >= 1");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(lengths), nrows = PyList_GET_SIZE(rows);
    double *best = PyMem_New(double, n + 1);
    Py_ssize_t *start = PyMem_New(Py_ssize_t, n + 1);
    PyObject *out = NULL;
    if (best == NULL || start == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    best[0] = 0.0;
    start[0] = 0;
    for (Py_ssize_t e = 1; e <= n; e++) {
        Py_ssize_t longest = PyLong_AsSsize_t(PyList_GET_ITEM(lengths, e - 1));
        if (longest == -1 && PyErr_Occurred())
            goto done;
        if (longest < 1 || longest >= nrows) {
            PyErr_SetString(PyExc_ValueError, "a length outside the cost table");
            goto done;
        }
        PyObject *row = PyList_GET_ITEM(rows, longest); /* borrowed; rows[T][b] */
        if (!PyList_Check(row) || PyList_GET_SIZE(row) <= max_run) {
            PyErr_SetString(PyExc_ValueError, "a cost table row must hold max_run + 1 costs");
            goto done;
        }
        Py_ssize_t fit = max_tokens / longest, first = e - max_run;
        if (fit < 1)
            fit = 1;
        if (e - fit > first)
            first = e - fit;
        if (first < 0)
            first = 0;
        double least = 0.0;
        Py_ssize_t at = e - 1;
        for (Py_ssize_t j = first; j < e; j++) {
            double c = PyFloat_AsDouble(PyList_GET_ITEM(row, e - j));
            if (c == -1.0 && PyErr_Occurred())
                goto done;
            c += best[j];
            if (j == first || c < least)
                least = c, at = j;
        }
        best[e] = least;
        start[e] = at;
    }
    Py_ssize_t runs = 0;
    for (Py_ssize_t e = n; e; e = start[e])
        runs++;
    out = PyList_New(runs);
    if (out == NULL)
        goto done;
    for (Py_ssize_t e = n, k = runs; e; e = start[e]) {
        PyObject *v = PyLong_FromSsize_t(start[e]);
        if (v == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, --k, v);
    }
done:
    PyMem_Free(best);
    PyMem_Free(start);
    return out;
}
