/* Compiled loops for the hottest block kernels (see pipeline/ops/compiled.py).
 *
 * Each loop does the floating-point operations of the library function it stands for
 * (scipy.ndimage's symmetric correlate1d, numpy.histogram's equal-bin path) in the same
 * order, so results are equal bit for bit. Build flags keep it so: no contraction of a
 * multiply and an add into one fused instruction (-ffp-contract=off, set in setup.py).
 * The loops release the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

/* On x86-64 Linux with GCC, the float loops are also built for AVX2 and the wider
 * version is chosen at load time where the processor has it (same operations, same
 * order: only more values per instruction). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define WIDE __attribute__((target_clones("avx2", "default")))
#else
#define WIDE
#endif

typedef enum { K_U8, K_I8, K_U16, K_I16, K_U32, K_I32, K_U64, K_I64, K_F32, K_F64, K_NONE } kind_t;

/* The element type of a buffer from its struct format and item size (native order). */
static kind_t
kind_of(const Py_buffer *view)
{
    const char *f = view->format ? view->format : "B";
    if (*f == '@' || *f == '=')
        f++;
#if PY_LITTLE_ENDIAN
    else if (*f == '<')
        f++;
#else
    else if (*f == '>')
        f++;
#endif
    if (f[0] == '\0' || f[1] != '\0')
        return K_NONE;
    Py_ssize_t size = view->itemsize;
    switch (f[0]) {
    case '?':
    case 'B':
        return size == 1 ? K_U8 : K_NONE;
    case 'b':
        return size == 1 ? K_I8 : K_NONE;
    case 'H':
    case 'h':
    case 'I':
    case 'i':
    case 'L':
    case 'l':
    case 'Q':
    case 'q': {
        int is_signed = f[0] >= 'a';
        switch (size) {
        case 2:
            return is_signed ? K_I16 : K_U16;
        case 4:
            return is_signed ? K_I32 : K_U32;
        case 8:
            return is_signed ? K_I64 : K_U64;
        default:
            return K_NONE;
        }
    }
    case 'f':
        return size == 4 ? K_F32 : K_NONE;
    case 'd':
        return size == 8 ? K_F64 : K_NONE;
    default:
        return K_NONE;
    }
}

/* A C-contiguous buffer of ``ndim`` axes; sets an exception and returns -1 otherwise. */
static int
get_buffer(PyObject *obj, Py_buffer *view, int ndim, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    if (ndim > 0 && view->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "%s: expected %d axes, got %d", name, ndim, view->ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int
get_float64(PyObject *obj, Py_buffer *view, int writable, const char *name)
{
    if (get_buffer(obj, view, 1, writable, name) < 0)
        return -1;
    if (kind_of(view) != K_F64) {
        PyErr_Format(PyExc_TypeError, "%s: expected float64", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int
get_int64(PyObject *obj, Py_buffer *view, int ndim, const char *name)
{
    if (get_buffer(obj, view, ndim, 1, name) < 0)
        return -1;
    if (kind_of(view) != K_I64) {
        PyErr_Format(PyExc_TypeError, "%s: expected int64", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Gaussian: three symmetric correlations, one axis after the other (z, y, x).           */

/* First axis of one output plane: line[x] = centre[x] * w[0], then
 * (lo_k[x] + hi_k[x]) * w[k] added for k = r .. 1, each value converted to double. */
#define DEFINE_FIRST_PASS(NAME, T)                                                          \
    static inline __attribute__((always_inline)) void NAME(const void *src, Py_ssize_t zc, Py_ssize_t plane, const double *w,    \
                     Py_ssize_t r, double *restrict line)                                  \
    {                                                                                       \
        const T *centre = (const T *)src + zc * plane;                                      \
        for (Py_ssize_t i = 0; i < plane; i++)                                              \
            line[i] = (double)centre[i] * w[0];                                             \
        for (Py_ssize_t k = r; k > 0; k--) {                                                \
            const T *restrict lo = (const T *)src + (zc - k) * plane;                       \
            const T *restrict hi = (const T *)src + (zc + k) * plane;                       \
            double wk = w[k];                                                               \
            for (Py_ssize_t i = 0; i < plane; i++)                                          \
                line[i] += ((double)lo[i] + (double)hi[i]) * wk;                            \
        }                                                                                   \
    }

DEFINE_FIRST_PASS(first_u8, uint8_t)
DEFINE_FIRST_PASS(first_i8, int8_t)
DEFINE_FIRST_PASS(first_u16, uint16_t)
DEFINE_FIRST_PASS(first_i16, int16_t)
DEFINE_FIRST_PASS(first_u32, uint32_t)
DEFINE_FIRST_PASS(first_i32, int32_t)
DEFINE_FIRST_PASS(first_u64, uint64_t)
DEFINE_FIRST_PASS(first_i64, int64_t)
DEFINE_FIRST_PASS(first_f32, float)
DEFINE_FIRST_PASS(first_f64, double)

/* out[z, y, x] = Gaussian of src around (z + rz, y + ry, x + rx). */
WIDE static void
separable(const void *src, kind_t kind, Py_ssize_t ny_in, Py_ssize_t nx_in, const double *wz,
          Py_ssize_t rz, const double *wy, Py_ssize_t ry, const double *wx, Py_ssize_t rx,
          double *out, Py_ssize_t nz, Py_ssize_t ny, Py_ssize_t nx, double *after_z,
          double *after_y)
{
    Py_ssize_t plane = ny_in * nx_in;
    for (Py_ssize_t z = 0; z < nz; z++) {
        switch (kind) {
        case K_U8:
            first_u8(src, z + rz, plane, wz, rz, after_z);
            break;
        case K_I8:
            first_i8(src, z + rz, plane, wz, rz, after_z);
            break;
        case K_U16:
            first_u16(src, z + rz, plane, wz, rz, after_z);
            break;
        case K_I16:
            first_i16(src, z + rz, plane, wz, rz, after_z);
            break;
        case K_U32:
            first_u32(src, z + rz, plane, wz, rz, after_z);
            break;
        case K_I32:
            first_i32(src, z + rz, plane, wz, rz, after_z);
            break;
        case K_U64:
            first_u64(src, z + rz, plane, wz, rz, after_z);
            break;
        case K_I64:
            first_i64(src, z + rz, plane, wz, rz, after_z);
            break;
        case K_F32:
            first_f32(src, z + rz, plane, wz, rz, after_z);
            break;
        default:
            first_f64(src, z + rz, plane, wz, rz, after_z);
        }
        for (Py_ssize_t y = 0; y < ny; y++) {
            double *restrict line = after_y + y * nx_in;
            const double *centre = after_z + (y + ry) * nx_in;
            for (Py_ssize_t x = 0; x < nx_in; x++)
                line[x] = centre[x] * wy[0];
            for (Py_ssize_t k = ry; k > 0; k--) {
                const double *lo = after_z + (y + ry - k) * nx_in;
                const double *hi = after_z + (y + ry + k) * nx_in;
                double wk = wy[k];
                for (Py_ssize_t x = 0; x < nx_in; x++)
                    line[x] += (lo[x] + hi[x]) * wk;
            }
        }
        for (Py_ssize_t y = 0; y < ny; y++) {
            double *restrict line = out + (z * ny + y) * nx;
            const double *s = after_y + y * nx_in + rx;
            for (Py_ssize_t x = 0; x < nx; x++)
                line[x] = s[x] * wx[0];
            for (Py_ssize_t k = rx; k > 0; k--) {
                double wk = wx[k];
                for (Py_ssize_t x = 0; x < nx; x++)
                    line[x] += (s[x - k] + s[x + k]) * wk;
            }
        }
    }
}

static PyObject *
py_separable_3d(PyObject *self, PyObject *args)
{
    PyObject *o_src, *o_wz, *o_wy, *o_wx, *o_out;
    if (!PyArg_ParseTuple(args, "OOOOO", &o_src, &o_wz, &o_wy, &o_wx, &o_out))
        return NULL;
    Py_buffer src, wz, wy, wx, out;
    if (get_buffer(o_src, &src, 3, 0, "image") < 0)
        return NULL;
    if (get_float64(o_wz, &wz, 0, "wz") < 0)
        goto fail_src;
    if (get_float64(o_wy, &wy, 0, "wy") < 0)
        goto fail_wz;
    if (get_float64(o_wx, &wx, 0, "wx") < 0)
        goto fail_wy;
    if (get_buffer(o_out, &out, 3, 1, "out") < 0)
        goto fail_wx;
    PyObject *result = NULL;
    kind_t kind = kind_of(&src);
    Py_ssize_t rz = wz.shape[0] - 1, ry = wy.shape[0] - 1, rx = wx.shape[0] - 1;
    Py_ssize_t nz = out.shape[0], ny = out.shape[1], nx = out.shape[2];
    if (kind == K_NONE) {
        PyErr_SetString(PyExc_TypeError, "image: unsupported element type");
    }
    else if (kind_of(&out) != K_F64) {
        PyErr_SetString(PyExc_TypeError, "out: expected float64");
    }
    else if (rz < 0 || ry < 0 || rx < 0 || src.shape[0] != nz + 2 * rz ||
             src.shape[1] != ny + 2 * ry || src.shape[2] != nx + 2 * rx) {
        PyErr_SetString(PyExc_ValueError, "image must be out's shape plus the kernel radii");
    }
    else {
        Py_ssize_t ny_in = src.shape[1], nx_in = src.shape[2];
        double *after_z = malloc(sizeof(double) * (size_t)(ny_in * nx_in + ny * nx_in + 1));
        if (after_z == NULL) {
            PyErr_NoMemory();
        }
        else {
            Py_BEGIN_ALLOW_THREADS
            separable(src.buf, kind, ny_in, nx_in, wz.buf, rz, wy.buf, ry, wx.buf, rx, out.buf,
                      nz, ny, nx, after_z, after_z + ny_in * nx_in);
            Py_END_ALLOW_THREADS
            free(after_z);
            result = Py_NewRef(Py_None);
        }
    }
    PyBuffer_Release(&out);
fail_wx:
    PyBuffer_Release(&wx);
fail_wy:
    PyBuffer_Release(&wy);
fail_wz:
    PyBuffer_Release(&wz);
fail_src:
    PyBuffer_Release(&src);
    return result;
}

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
        Py_ssize_t idx = (Py_ssize_t)(((v - first) / denom) * (double)n);
        if (idx == n)
            idx -= 1;
        if (v < edges[idx])
            idx -= 1;
        if (idx != n - 1 && v >= edges[idx + 1])
            idx += 1;
        counts[idx] += 1;
    }
}

static PyObject *
py_uniform_counts(PyObject *self, PyObject *args)
{
    PyObject *o_values, *o_edges, *o_counts;
    if (!PyArg_ParseTuple(args, "OOO", &o_values, &o_edges, &o_counts))
        return NULL;
    Py_buffer values, edges, counts;
    PyObject *result = NULL;
    if (get_float64(o_values, &values, 0, "values") < 0)
        return NULL;
    if (get_float64(o_edges, &edges, 0, "edges") < 0)
        goto fail_values;
    if (get_int64(o_counts, &counts, 1, "counts") < 0)
        goto fail_edges;
    Py_ssize_t n = counts.shape[0];
    if (n < 1 || edges.shape[0] != n + 1) {
        PyErr_SetString(PyExc_ValueError, "edges must have one more item than counts");
    }
    else {
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

/* ---------------------------------------------------------------------------------- */
/* Per label of a 3D block: voxel count, raster index of its first voxel, and its       */
/* smallest and largest index per axis (box[l, 0:3] and box[l, 3:6]).                   */

#define DEFINE_EXTENTS(NAME, T)                                                             \
    static int NAME(const void *data, Py_ssize_t nz, Py_ssize_t ny, Py_ssize_t nx,         \
                    int64_t *sizes, int64_t *first, int64_t *box, Py_ssize_t n)            \
    {                                                                                       \
        const T *labels = (const T *)data;                                                  \
        for (Py_ssize_t z = 0; z < nz; z++)                                                 \
            for (Py_ssize_t y = 0; y < ny; y++) {                                           \
                const T *row = labels + (z * ny + y) * nx;                                  \
                for (Py_ssize_t x = 0; x < nx; x++) {                                       \
                    T label = row[x];                                                       \
                    if (label == 0)                                                         \
                        continue;                                                           \
                    if (label < 0 || (uint64_t)label > (uint64_t)n)                         \
                        return -1;                                                          \
                    int64_t *b = box + 6 * (Py_ssize_t)label;                               \
                    if (sizes[label]++ == 0) {                                              \
                        first[label] = (z * ny + y) * nx + x;                               \
                        b[0] = b[3] = z;                                                    \
                        b[1] = b[4] = y;                                                    \
                        b[2] = b[5] = x;                                                    \
                        continue;                                                           \
                    }                                                                       \
                    b[3] = z; /* raster order: z never falls */                             \
                    if (y < b[1])                                                           \
                        b[1] = y;                                                           \
                    else if (y > b[4])                                                      \
                        b[4] = y;                                                           \
                    if (x < b[2])                                                           \
                        b[2] = x;                                                           \
                    else if (x > b[5])                                                      \
                        b[5] = x;                                                           \
                }                                                                           \
            }                                                                               \
        return 0;                                                                           \
    }

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtype-limits"
#endif
DEFINE_EXTENTS(extents_u8, uint8_t)
DEFINE_EXTENTS(extents_i8, int8_t)
DEFINE_EXTENTS(extents_u16, uint16_t)
DEFINE_EXTENTS(extents_i16, int16_t)
DEFINE_EXTENTS(extents_u32, uint32_t)
DEFINE_EXTENTS(extents_i32, int32_t)
DEFINE_EXTENTS(extents_u64, uint64_t)
DEFINE_EXTENTS(extents_i64, int64_t)
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

typedef int (*extents_t)(const void *, Py_ssize_t, Py_ssize_t, Py_ssize_t, int64_t *, int64_t *,
                         int64_t *, Py_ssize_t);

static const extents_t EXTENTS[] = {extents_u8,  extents_i8,  extents_u16, extents_i16,
                                    extents_u32, extents_i32, extents_u64, extents_i64};

static PyObject *
py_label_extents(PyObject *self, PyObject *args)
{
    PyObject *o_labels, *o_sizes, *o_first, *o_box;
    if (!PyArg_ParseTuple(args, "OOOO", &o_labels, &o_sizes, &o_first, &o_box))
        return NULL;
    Py_buffer labels, sizes, first, box;
    PyObject *result = NULL;
    if (get_buffer(o_labels, &labels, 3, 0, "labels") < 0)
        return NULL;
    if (get_int64(o_sizes, &sizes, 1, "sizes") < 0)
        goto fail_labels;
    if (get_int64(o_first, &first, 1, "first") < 0)
        goto fail_sizes;
    if (get_int64(o_box, &box, 2, "box") < 0)
        goto fail_first;
    kind_t kind = kind_of(&labels);
    Py_ssize_t n = sizes.shape[0] - 1;
    if (kind > K_I64) {
        PyErr_SetString(PyExc_TypeError, "labels: expected integers");
    }
    else if (n < 0 || first.shape[0] != n + 1 || box.shape[0] != n + 1 || box.shape[1] != 6) {
        PyErr_SetString(PyExc_ValueError, "sizes, first and box must have n + 1 rows");
    }
    else {
        int status;
        Py_BEGIN_ALLOW_THREADS
        status = EXTENTS[kind](labels.buf, labels.shape[0], labels.shape[1], labels.shape[2],
                               sizes.buf, first.buf, box.buf, n);
        Py_END_ALLOW_THREADS
        if (status < 0)
            PyErr_Format(PyExc_ValueError, "labels: a label outside 0..%zd", n);
        else
            result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&box);
fail_first:
    PyBuffer_Release(&first);
fail_sizes:
    PyBuffer_Release(&sizes);
fail_labels:
    PyBuffer_Release(&labels);
    return result;
}

/* ---------------------------------------------------------------------------------- */
/* out[i] = table[labels[i]]: a relabel table applied to a block of unsigned labels.    */

#define DEFINE_TABLE(NAME, L, V)                                                            \
    static int NAME(const void *data, Py_ssize_t size, const void *table, Py_ssize_t n,    \
                    void *out)                                                             \
    {                                                                                       \
        const L *labels = (const L *)data;                                                  \
        const V *lut = (const V *)table;                                                    \
        V *restrict dst = (V *)out;                                                         \
        for (Py_ssize_t i = 0; i < size; i++) {                                             \
            L label = labels[i];                                                            \
            if ((uint64_t)label >= (uint64_t)n)                                             \
                return -1;                                                                  \
            dst[i] = lut[label];                                                            \
        }                                                                                   \
        return 0;                                                                           \
    }

DEFINE_TABLE(table_u8_u32, uint8_t, uint32_t)
DEFINE_TABLE(table_u16_u32, uint16_t, uint32_t)
DEFINE_TABLE(table_u32_u32, uint32_t, uint32_t)
DEFINE_TABLE(table_u64_u32, uint64_t, uint32_t)
DEFINE_TABLE(table_u8_u64, uint8_t, uint64_t)
DEFINE_TABLE(table_u16_u64, uint16_t, uint64_t)
DEFINE_TABLE(table_u32_u64, uint32_t, uint64_t)
DEFINE_TABLE(table_u64_u64, uint64_t, uint64_t)

typedef int (*table_t)(const void *, Py_ssize_t, const void *, Py_ssize_t, void *);

/* The loop for these label and table element types (NULL: not covered). */
static table_t
table_loop(kind_t labels, kind_t values)
{
    int wide = values == K_U64;
    if (values != K_U32 && !wide)
        return NULL;
    switch (labels) {
    case K_U8:
        return wide ? table_u8_u64 : table_u8_u32;
    case K_U16:
        return wide ? table_u16_u64 : table_u16_u32;
    case K_U32:
        return wide ? table_u32_u64 : table_u32_u32;
    case K_U64:
        return wide ? table_u64_u64 : table_u64_u32;
    default:
        return NULL;
    }
}

static PyObject *
py_apply_table(PyObject *self, PyObject *args)
{
    PyObject *o_labels, *o_table, *o_out;
    if (!PyArg_ParseTuple(args, "OOO", &o_labels, &o_table, &o_out))
        return NULL;
    Py_buffer labels, table, out;
    PyObject *result = NULL;
    if (get_buffer(o_labels, &labels, 0, 0, "labels") < 0)
        return NULL;
    if (get_buffer(o_table, &table, 1, 0, "table") < 0)
        goto fail_labels;
    if (get_buffer(o_out, &out, 0, 1, "out") < 0)
        goto fail_table;
    table_t loop = table_loop(kind_of(&labels), kind_of(&table));
    Py_ssize_t size = labels.itemsize ? labels.len / labels.itemsize : 0;
    Py_ssize_t n = table.shape[0];
    if (loop == NULL) {
        PyErr_SetString(PyExc_TypeError, "labels or table: unsupported element type");
    }
    else if (kind_of(&out) != kind_of(&table) || out.len / out.itemsize != size) {
        PyErr_SetString(PyExc_ValueError, "out must hold one table value per label");
    }
    else {
        int status;
        Py_BEGIN_ALLOW_THREADS
        status = loop(labels.buf, size, table.buf, n, out.buf);
        Py_END_ALLOW_THREADS
        if (status < 0)
            PyErr_Format(PyExc_IndexError, "labels: a label outside the table's %zd rows", n);
        else
            result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&out);
fail_table:
    PyBuffer_Release(&table);
fail_labels:
    PyBuffer_Release(&labels);
    return result;
}

static PyMethodDef methods[] = {
    {"separable_3d", py_separable_3d, METH_VARARGS,
     "separable_3d(image, wz, wy, wx, out): the Gaussian of a padded 3D image into out."},
    {"uniform_counts", py_uniform_counts, METH_VARARGS,
     "uniform_counts(values, edges, counts): numpy.histogram's equal-bin counts, added."},
    {"label_extents", py_label_extents, METH_VARARGS,
     "label_extents(labels, sizes, first, box): size, first voxel and box per label."},
    {"apply_table", py_apply_table, METH_VARARGS,
     "apply_table(labels, table, out): out = table[labels], element by element."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_loops", "Compiled block loops (see pipeline.ops.compiled).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__loops(void)
{
    return PyModule_Create(&module);
}
