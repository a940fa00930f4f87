/* The Gaussian: scipy.ndimage's symmetric correlate1d along each axis in turn (see
 * _loops.c for the rules every loop keeps). */
#include "_loops.h"

/* ---------------------------------------------------------------------------------- */
/* Gaussian: three symmetric correlations, one axis after the other (z, y, x).           */

/* First axis of one output plane: line[x] = centre[x] * w[0], then
 * (lo_k[x] + hi_k[x]) * w[k] added for k = r .. 1, each value converted to double. */
#define DEFINE_FIRST_PASS(NAME, T)                                                          \
    static inline __attribute__((always_inline)) void NAME(                                \
        const void *src, Py_ssize_t zc, Py_ssize_t plane, const double *w, Py_ssize_t r,    \
        double *restrict line)                                                              \
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
        /* the first pass, inlined for the image's element type */
#define FIRST(KIND, FUNC)                                                                   \
    case KIND:                                                                              \
        FUNC(src, z + rz, plane, wz, rz, after_z);                                          \
        break;
        switch (kind) {
            FIRST(K_U8, first_u8)
            FIRST(K_I8, first_i8)
            FIRST(K_U16, first_u16)
            FIRST(K_I16, first_i16)
            FIRST(K_U32, first_u32)
            FIRST(K_I32, first_i32)
            FIRST(K_U64, first_u64)
            FIRST(K_I64, first_i64)
            FIRST(K_F32, first_f32)
        default:
            first_f64(src, z + rz, plane, wz, rz, after_z);
        }
#undef FIRST
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

PyObject *
py_separable_3d(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_src, *o_wz, *o_wy, *o_wx, *o_out;
    if (!PyArg_ParseTuple(args, "OOOOO", &o_src, &o_wz, &o_wy, &o_wx, &o_out))
        return NULL;
    Py_buffer src, wz, wy, wx, out;
    PyObject *result = NULL; /* set before the first jump to a release below */
    if (get_buffer(o_src, &src, 3, 0, "image") < 0)
        return NULL;
    if (get_typed(o_wz, &wz, 1, 0, K_F64, "wz") < 0)
        goto fail_src;
    if (get_typed(o_wy, &wy, 1, 0, K_F64, "wy") < 0)
        goto fail_wz;
    if (get_typed(o_wx, &wx, 1, 0, K_F64, "wx") < 0)
        goto fail_wy;
    if (get_buffer(o_out, &out, 3, 1, "out") < 0)
        goto fail_wx;
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
