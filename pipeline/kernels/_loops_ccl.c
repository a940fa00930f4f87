/* Connected components of a mask, run by run (skimage.measure.label's partition).
 *
 * Each row (fixed z and y) is cut into runs of non-zero voxels. A run touches a run of
 * an earlier neighbouring row when their x ranges overlap, widened by one voxel where the
 * connectivity joins diagonal neighbours; touching runs are united (union-find, the run
 * first in raster order as each set's root). Labels are numbered 1..n in the raster order
 * of each component's first voxel. The loop holds no Python objects and runs without the
 * GIL (cc3d, which segpipe used before, holds it for the whole call).
 */
#include "_loops.h"

#include <string.h>

typedef struct {
    int32_t x0, x1; /* voxels x0 .. x1 - 1 */
} run_t;

typedef struct {
    run_t *runs;
    int32_t *parent;
    Py_ssize_t size, capacity;
} runs_t;

static int
push_run(runs_t *r, Py_ssize_t x0, Py_ssize_t x1)
{
    if (r->size == r->capacity) {
        Py_ssize_t capacity = r->capacity ? 2 * r->capacity : 4096;
        run_t *runs = realloc(r->runs, (size_t)capacity * sizeof(run_t));
        if (runs == NULL)
            return -1;
        r->runs = runs;
        int32_t *parent = realloc(r->parent, (size_t)capacity * sizeof(int32_t));
        if (parent == NULL)
            return -1;
        r->parent = parent;
        r->capacity = capacity;
    }
    r->runs[r->size].x0 = (int32_t)x0;
    r->runs[r->size].x1 = (int32_t)x1;
    r->parent[r->size] = (int32_t)r->size;
    r->size++;
    return 0;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t
load8(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The runs of one row, appended to r; -1 when out of memory. */
static int
row_runs(const uint8_t *row, Py_ssize_t nx, runs_t *r)
{
    Py_ssize_t x = 0;
    while (x < nx) {
        while (x + 8 <= nx && load8(row + x) == 0)
            x += 8;
        while (x < nx && row[x] == 0)
            x++;
        if (x == nx)
            break;
        Py_ssize_t x0 = x;
        for (uint64_t v; x + 8 <= nx; x += 8) {
            v = load8(row + x);
            if ((v - ONES) & ~v & HIGHS) /* a zero byte in these eight */
                break;
        }
        while (x < nx && row[x] != 0)
            x++;
        if (push_run(r, x0, x) < 0)
            return -1;
    }
    return 0;
}

static int32_t
root_of(int32_t *parent, int32_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

static void
unite(int32_t *parent, int32_t a, int32_t b)
{
    a = root_of(parent, a);
    b = root_of(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

/* Unite the runs c0..c1-1 of a row with the runs p0..p1-1 of an earlier row that they
 * touch: x ranges overlapping once widened by `wide` (0 or 1) voxels. Both rows' runs are
 * in x order and apart by at least one voxel. */
static void
join_rows(const run_t *runs, int32_t *parent, Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t p0,
          Py_ssize_t p1, int wide)
{
    while (c0 < c1 && p0 < p1) {
        const run_t *a = runs + c0, *b = runs + p0;
        if (b->x1 + wide <= a->x0)
            p0++;
        else if (a->x1 + wide <= b->x0)
            c0++;
        else {
            unite(parent, (int32_t)c0, (int32_t)p0);
            if (a->x1 < b->x1)
                c0++;
            else
                p0++;
        }
    }
}

/* Label the non-zero voxels of an nz x ny x nx mask into out; the number of labels, or -1
 * when out of memory. connectivity: 1..3, neighbours at most that many axis steps away. */
static Py_ssize_t
label_mask(const uint8_t *mask, Py_ssize_t nz, Py_ssize_t ny, Py_ssize_t nx, int connectivity,
           uint32_t *out)
{
    Py_ssize_t rows = nz * ny, n = 0;
    runs_t r = {NULL, NULL, 0, 0};
    Py_ssize_t *first = malloc((size_t)(rows + 1) * sizeof(Py_ssize_t)); /* runs of row i */
    uint32_t *label = NULL;
    if (first == NULL)
        return -1;
    int side = connectivity >= 2;     /* rows one step away: diagonal in x too */
    int corner = connectivity >= 3;   /* rows two steps away (z and y): diagonal in x */
    for (Py_ssize_t i = 0; i < rows; i++) {
        first[i] = r.size;
        if (row_runs(mask + i * nx, nx, &r) < 0)
            goto done;
        Py_ssize_t z = i / ny, y = i % ny, end = r.size;
        if (first[i] == end)
            continue;
        if (y > 0) /* (z, y - 1) */
            join_rows(r.runs, r.parent, first[i], end, first[i - 1], first[i], side);
        if (z == 0)
            continue;
        Py_ssize_t up = i - ny; /* (z - 1, y) */
        join_rows(r.runs, r.parent, first[i], end, first[up], first[up + 1], side);
        if (connectivity < 2)
            continue;
        if (y > 0) /* (z - 1, y - 1) */
            join_rows(r.runs, r.parent, first[i], end, first[up - 1], first[up], corner);
        if (y < ny - 1) /* (z - 1, y + 1) */
            join_rows(r.runs, r.parent, first[i], end, first[up + 1], first[up + 2], corner);
    }
    first[rows] = r.size;
    label = malloc((size_t)(r.size ? r.size : 1) * sizeof(uint32_t));
    if (label == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < r.size; k++) {
        int32_t root = root_of(r.parent, (int32_t)k);
        label[k] = root == k ? (uint32_t)++n : label[root]; /* a root comes first */
    }
    for (Py_ssize_t i = 0; i < rows; i++) {
        uint32_t *dst = out + i * nx;
        Py_ssize_t x = 0;
        for (Py_ssize_t k = first[i]; k < first[i + 1]; k++) {
            const run_t *run = r.runs + k;
            memset(dst + x, 0, (size_t)(run->x0 - x) * sizeof(uint32_t));
            for (x = run->x0; x < run->x1; x++)
                dst[x] = label[k];
        }
        memset(dst + x, 0, (size_t)(nx - x) * sizeof(uint32_t));
    }
done:
    if (label == NULL)
        n = -1;
    free(label);
    free(first);
    free(r.runs);
    free(r.parent);
    return n;
}

PyObject *
py_label_mask(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_mask, *o_out;
    int connectivity;
    if (!PyArg_ParseTuple(args, "OOi", &o_mask, &o_out, &connectivity))
        return NULL;
    Py_buffer mask, out;
    PyObject *result = NULL;
    if (get_typed(o_mask, &mask, 3, 0, K_U8, "mask") < 0)
        return NULL;
    if (get_typed(o_out, &out, 3, 1, K_U32, "out") < 0)
        goto fail_mask;
    if (connectivity < 1 || connectivity > 3)
        PyErr_SetString(PyExc_ValueError, "connectivity must be 1, 2 or 3");
    else if (memcmp(mask.shape, out.shape, 3 * sizeof(Py_ssize_t)) != 0)
        PyErr_SetString(PyExc_ValueError, "mask and out differ in shape");
    else if (mask.shape[0] * mask.shape[1] * mask.shape[2] >= INT32_MAX)
        PyErr_SetString(PyExc_ValueError, "mask: more voxels than the runs can count");
    else {
        Py_ssize_t n;
        Py_BEGIN_ALLOW_THREADS
        n = label_mask(mask.buf, mask.shape[0], mask.shape[1], mask.shape[2], connectivity,
                       out.buf);
        Py_END_ALLOW_THREADS
        result = n < 0 ? PyErr_NoMemory() : PyLong_FromSsize_t(n);
    }
    PyBuffer_Release(&out);
fail_mask:
    PyBuffer_Release(&mask);
    return result;
}
