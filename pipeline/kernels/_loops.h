/* Shared by the compiled block loops (see _loops.c). */
#ifndef SEGPIPE_LOOPS_H
#define SEGPIPE_LOOPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

/* On x86-64 Linux with GCC, the float loops are also built for AVX-512 and AVX2, and the
 * widest version the processor has is chosen at load time (same operations, same order:
 * only more values per instruction). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define WIDE __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WIDE
#endif

typedef enum { K_U8, K_I8, K_U16, K_I16, K_U32, K_I32, K_U64, K_I64, K_F32, K_F64, K_NONE } kind_t;

/* The element type of a buffer from its struct format and item size (native order). */
kind_t kind_of(const Py_buffer *view);
/* A C-contiguous buffer of ``ndim`` axes (0: any); otherwise an exception set and -1. */
int get_buffer(PyObject *obj, Py_buffer *view, int ndim, int writable, const char *name);
/* As get_buffer, of elements of ``kind`` (not K_NONE). */
int get_typed(PyObject *obj, Py_buffer *view, int ndim, int writable, kind_t kind, const char *name);

PyObject *py_separable_3d(PyObject *self, PyObject *args);
PyObject *py_label_extents(PyObject *self, PyObject *args);
PyObject *py_apply_table(PyObject *self, PyObject *args);
PyObject *py_label_mask(PyObject *self, PyObject *args);

#endif
