/* Numpy arrays seen through the buffer protocol: element types and checks. */
#include "_loops.h"

kind_t
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

int
get_buffer(PyObject *obj, Py_buffer *view, int ndim, int writable, const char *name)
{
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected an array, got %.200s", name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        /* Name the argument in the exporter's message (not C-contiguous, read-only); a
         * BufferError (bytes asked to be writable) becomes the ValueError the others give. */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        PyObject *as = PyErr_GivenExceptionMatches(type, PyExc_BufferError) ? PyExc_ValueError
                                                                            : type;
        if (value != NULL)
            PyErr_Format(as, "%s: %S", name, value);
        else
            PyErr_Format(as, "%s: not an array of the needed layout", name);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
        return -1;
    }
    if (ndim > 0 && view->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "%s: expected %d %s, got %d", name, ndim,
                     ndim == 1 ? "axis" : "axes", view->ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

int
get_typed(PyObject *obj, Py_buffer *view, int ndim, int writable, kind_t kind, const char *name)
{
    if (get_buffer(obj, view, ndim, writable, name) < 0)
        return -1;
    if (kind_of(view) != kind) {
        static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32",
                                      "int32", "uint64", "int64", "float32", "float64"};
        PyErr_Format(PyExc_TypeError, "%s: expected %s", name, names[kind]);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}
