/* Loops over label blocks: per-label extents, relabel tables. */
#include "_loops.h"

#include <string.h>

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
                    /* a negative label converts to 2^64 + label, past any n */             \
                    if ((uint64_t)label > (uint64_t)n)                                      \
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

DEFINE_EXTENTS(extents_u8, uint8_t)
DEFINE_EXTENTS(extents_i8, int8_t)
DEFINE_EXTENTS(extents_u16, uint16_t)
DEFINE_EXTENTS(extents_i16, int16_t)
DEFINE_EXTENTS(extents_u32, uint32_t)
DEFINE_EXTENTS(extents_i32, int32_t)
DEFINE_EXTENTS(extents_u64, uint64_t)
DEFINE_EXTENTS(extents_i64, int64_t)

typedef int (*extents_t)(const void *, Py_ssize_t, Py_ssize_t, Py_ssize_t, int64_t *, int64_t *,
                         int64_t *, Py_ssize_t);

static const extents_t EXTENTS[] = {extents_u8,  extents_i8,  extents_u16, extents_i16,
                                    extents_u32, extents_i32, extents_u64, extents_i64};

PyObject *
py_label_extents(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_labels, *o_sizes, *o_first, *o_box;
    if (!PyArg_ParseTuple(args, "OOOO", &o_labels, &o_sizes, &o_first, &o_box))
        return NULL;
    Py_buffer labels, sizes, first, box;
    PyObject *result = NULL;
    if (get_buffer(o_labels, &labels, 3, 0, "labels") < 0)
        return NULL;
    if (get_typed(o_sizes, &sizes, 1, 1, K_I64, "sizes") < 0)
        goto fail_labels;
    if (get_typed(o_first, &first, 1, 1, K_I64, "first") < 0)
        goto fail_sizes;
    if (get_typed(o_box, &box, 2, 1, K_I64, "box") < 0)
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

PyObject *
py_apply_table(PyObject *Py_UNUSED(self), PyObject *args)
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
    kind_t values = kind_of(&table);
    table_t loop = table_loop(kind_of(&labels), values);
    Py_ssize_t size = labels.itemsize ? labels.len / labels.itemsize : 0;
    Py_ssize_t n = table.shape[0];
    if (values != K_U32 && values != K_U64) {
        PyErr_SetString(PyExc_TypeError, "table: expected uint32 or uint64");
    }
    else if (loop == NULL) {
        PyErr_SetString(PyExc_TypeError, "labels: expected unsigned integers");
    }
    else if (kind_of(&out) != values) {
        PyErr_SetString(PyExc_TypeError, "out: expected the table's element type");
    }
    /* one table value per label, in the labels' shape (out.len / out.itemsize alone would
     * let a flat out stand for a block) */
    else if (out.ndim != labels.ndim ||
             (labels.ndim > 0 &&
              memcmp(out.shape, labels.shape, (size_t)labels.ndim * sizeof(Py_ssize_t)) != 0)) {
        PyErr_SetString(PyExc_ValueError, "out and labels differ in shape");
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
