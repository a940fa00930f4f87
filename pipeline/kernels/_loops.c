/* Compiled loops for the hottest block kernels (see pipeline.kernels.compiled.py).
 *
 * Each loop does the floating-point operations of the library function it stands for
 * (scipy.ndimage's symmetric correlate1d, numpy.histogram's equal-bin path) in the same
 * order, so results are equal bit for bit. Build flags keep it so: no contraction of a
 * multiply and an add into one fused instruction (-ffp-contract=off, set in setup.py).
 * The loops release the GIL. The Gaussian is in _loops_gaussian.c, the label loops in
 * _loops_labels.c, connected components in _loops_ccl.c, buffer checks in _loops_buffers.c;
 * the histogram (counts, and bin codes) and the module here.
 */
#include "_loops.h"

#include <math.h>

/* ---------------------------------------------------------------------------------- */
/* numpy.histogram's equal-bin path, value by value.                                      */

WIDE static void
uniform_counts(const double *values, Py_ssize_t size, const double *edges, int64_t *counts,
               Py_ssize_t n)
{
    double first = edges[0], last = edges[n], denom = last - first;
    for (Py_ssize_t i = 0; i < size; i++) {
        double v = values[i];
        if (!(v >= first && v <= last))
            continue;  /* outside the range, or NaN */
        /* numpy's estimate, in [0, n] for the range py_uniform_counts lets through; kept to
         * the bins before it is cast (numpy's own check: idx == n becomes n - 1), so no
         * estimate (NaN, out of range) can index past edges or counts */
        double estimate = ((v - first) / denom) * (double)n;
        Py_ssize_t idx = 0;
        if (estimate >= (double)n)
            idx = n - 1;
        else if (estimate > 0.0)
            idx = (Py_ssize_t)estimate;
        if (v < edges[idx])
            idx -= 1;
        if (idx != n - 1 && v >= edges[idx + 1])
            idx += 1;
        counts[idx] += 1;
    }
}

/* Each value's bin (estimated, kept to the bins, then moved until
 * edges[bin] <= v < edges[bin + 1], the last bin closed) and its side of the bin's centre:
 * 2 * bin + (v > centres[bin]). The moves make the bin exact whatever the estimate, so the
 * estimate multiplies by n / (last - first) rather than dividing as numpy does (a division
 * a value costs more). Values above the range get ABOVE; below it, and NaN, OUTSIDE. */
#define ABOVE 0xFFFE
#define OUTSIDE 0xFFFF

WIDE static void
uniform_codes(const double *values, Py_ssize_t size, const double *edges, const double *centres,
              uint16_t *codes, int64_t *counts, Py_ssize_t n)
{
    double first = edges[0], last = edges[n], scale = (double)n / (last - first);
    double top = (double)(n - 1);
    for (Py_ssize_t i = 0; i < size; i++) {
        double v = values[i];
        if (!(v >= first && v <= last)) {
            codes[i] = v > last ? ABOVE : OUTSIDE;
            continue;
        }
        double estimate = (v - first) * scale;  /* >= 0; NaN or inf where scale overflowed */
        Py_ssize_t idx = (Py_ssize_t)(estimate < top ? estimate : top);
        while (idx > 0 && v < edges[idx])
            idx -= 1;
        while (idx < n - 1 && v >= edges[idx + 1])
            idx += 1;
        codes[i] = (uint16_t)(2 * idx + (v > centres[idx]));
        counts[idx] += 1;
    }
}

/* 0 where edges[0..n] increase strictly from a finite first edge to a finite last one
 * (with a finite width, where `finite_width`): the bins numpy makes for a range. Otherwise
 * -1, with a ValueError set. */
static int
check_edges(const double *edges, Py_ssize_t n, int finite_width)
{
    if (!(isfinite(edges[0]) && isfinite(edges[n]))) {
        PyErr_SetString(PyExc_ValueError, "edges: the first and last edge must be finite");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (!(edges[i] < edges[i + 1])) {
            PyErr_SetString(PyExc_ValueError, "edges: must increase strictly");
            return -1;
        }
    if (finite_width && !isfinite(edges[n] - edges[0])) {
        PyErr_SetString(PyExc_ValueError, "edges: the range's width overflows a double");
        return -1;
    }
    return 0;
}

static PyObject *
py_uniform_codes(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_values, *o_edges, *o_centres, *o_codes, *o_counts;
    if (!PyArg_ParseTuple(args, "OOOOO", &o_values, &o_edges, &o_centres, &o_codes, &o_counts))
        return NULL;
    Py_buffer values, edges, centres, codes, counts;
    PyObject *result = NULL;
    if (get_typed(o_values, &values, 1, 0, K_F64, "values") < 0)
        return NULL;
    if (get_typed(o_edges, &edges, 1, 0, K_F64, "edges") < 0)
        goto fail_values;
    if (get_typed(o_centres, &centres, 1, 0, K_F64, "centres") < 0)
        goto fail_edges;
    if (get_typed(o_codes, &codes, 1, 1, K_U16, "codes") < 0)
        goto fail_centres;
    if (get_typed(o_counts, &counts, 1, 1, K_I64, "counts") < 0)
        goto fail_codes;
    Py_ssize_t n = centres.shape[0];
    if (n < 1 || 2 * n > ABOVE || edges.shape[0] != n + 1 || counts.shape[0] != n)
        PyErr_SetString(PyExc_ValueError, "needs n centres and counts, n + 1 edges, 2n <= 65534");
    else if (codes.shape[0] != values.shape[0])
        PyErr_SetString(PyExc_ValueError, "codes and values differ in size");
    /* the moves to each value's bin need sorted edges; an infinite number of bins per
     * unit of the range is fine (the moves then start from the last bin) */
    else if (check_edges(edges.buf, n, 0) == 0) {
        Py_BEGIN_ALLOW_THREADS
        uniform_codes(values.buf, values.shape[0], edges.buf, centres.buf, codes.buf, counts.buf,
                      n);
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&counts);
fail_codes:
    PyBuffer_Release(&codes);
fail_centres:
    PyBuffer_Release(&centres);
fail_edges:
    PyBuffer_Release(&edges);
fail_values:
    PyBuffer_Release(&values);
    return result;
}

static PyObject *
py_uniform_counts(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_values, *o_edges, *o_counts;
    if (!PyArg_ParseTuple(args, "OOO", &o_values, &o_edges, &o_counts))
        return NULL;
    Py_buffer values, edges, counts;
    PyObject *result = NULL;
    if (get_typed(o_values, &values, 1, 0, K_F64, "values") < 0)
        return NULL;
    if (get_typed(o_edges, &edges, 1, 0, K_F64, "edges") < 0)
        goto fail_values;
    if (get_typed(o_counts, &counts, 1, 1, K_I64, "counts") < 0)
        goto fail_edges;
    Py_ssize_t n = counts.shape[0];
    if (n < 1 || edges.shape[0] != n + 1) {
        PyErr_SetString(PyExc_ValueError, "edges must have one more item than counts");
    }
    /* where the width overflows, numpy's estimate is NaN (and numpy fails indexing) */
    else if (check_edges(edges.buf, n, 1) == 0) {
        Py_BEGIN_ALLOW_THREADS
        uniform_counts(values.buf, values.shape[0], edges.buf, counts.buf, n);
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&counts);
fail_edges:
    PyBuffer_Release(&edges);
fail_values:
    PyBuffer_Release(&values);
    return result;
}

static PyMethodDef methods[] = {
    {"separable_3d", py_separable_3d, METH_VARARGS,
     "separable_3d(image, wz, wy, wx, out): the Gaussian of a padded 3D image into out."},
    {"uniform_counts", py_uniform_counts, METH_VARARGS,
     "uniform_counts(values, edges, counts): numpy.histogram's equal-bin counts, added."},
    {"uniform_codes", py_uniform_codes, METH_VARARGS,
     "uniform_codes(values, edges, centres, codes, counts): 2 * bin + (value > bin centre),"
     " and the counts per bin added."},
    {"label_extents", py_label_extents, METH_VARARGS,
     "label_extents(labels, sizes, first, box): size, first voxel and box per label."},
    {"apply_table", py_apply_table, METH_VARARGS,
     "apply_table(labels, table, out): out = table[labels], element by element."},
    {"label_mask", py_label_mask, METH_VARARGS,
     "label_mask(mask, out, connectivity): connected components of a 3D uint8 mask into"
     " out (uint32), numbered in raster order; returns their number."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_loops",
    "Compiled block loops (see pipeline.kernels.compiled).",
    -1,
    methods,
    NULL, /* m_slots */
    NULL, /* m_traverse */
    NULL, /* m_clear */
    NULL, /* m_free */
};

PyMODINIT_FUNC
PyInit__loops(void)
{
    return PyModule_Create(&module);
}
