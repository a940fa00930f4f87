"""Every entry point of the compiled loops refuses bad arguments with a Python exception.

The functions of ``pipeline.kernels._loops`` are called directly (not through
:mod:`pipeline.kernels.compiled`, which only ever passes what they accept) with arrays of
the wrong element type, number of axes or layout, read-only outputs, mismatched shapes,
out-of-range parameters and the wrong number of arguments. Each must raise TypeError or
ValueError (IndexError for a label past a relabel table, as numpy indexing) naming what
is wrong, and never read or write out of bounds. A test fails where the module exports a
function with no cases here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

_loops = pytest.importorskip(
    "pipeline.kernels._loops",
    reason="the compiled loops are not built here (installed without a C compiler)",
)


@dataclass(frozen=True)
class Array:
    """An array argument: its name in the error messages, its number of axes (None: any),
    whether it is written, and an element type the function refuses for it."""

    name: str
    ndim: int | None
    writable: bool
    wrong_dtype: type


@dataclass(frozen=True)
class Entry:
    """An entry point: valid arguments (made afresh for each call) and its array ones."""

    good: Callable[[], list[Any]]
    arrays: tuple[Array | None, ...]  # None: not an array argument


def _separable_3d() -> list[Any]:
    w = np.array([0.5, 0.25])  # radius 1 on every axis
    return [np.ones((5, 6, 7)), w, w.copy(), w.copy(), np.zeros((3, 4, 5))]


def _uniform_counts() -> list[Any]:
    return [np.linspace(-0.5, 1.5, 10), np.linspace(0.0, 1.0, 5), np.zeros(4, np.int64)]


def _uniform_codes() -> list[Any]:
    edges = np.linspace(0.0, 1.0, 5)
    centres = (edges[:-1] + edges[1:]) / 2
    codes, counts = np.zeros(10, np.uint16), np.zeros(4, np.int64)
    return [np.linspace(-0.5, 1.5, 10), edges, centres, codes, counts]


def _label_extents() -> list[Any]:
    labels = (np.arange(24, dtype=np.uint16) % 4).reshape(2, 3, 4)  # labels 1..3
    rows = 3 + 1  # a row per label and one for the background
    return [labels, np.zeros(rows, np.int64), np.zeros(rows, np.int64), np.zeros((rows, 6), int)]


def _apply_table() -> list[Any]:
    labels = (np.arange(6, dtype=np.uint8) % 5).reshape(2, 3)
    return [labels, np.arange(10, 15, dtype=np.uint32), np.empty((2, 3), np.uint32)]


def _label_mask() -> list[Any]:
    mask = np.zeros((2, 3, 4), np.uint8)
    mask[:, 1, 1:3] = 1
    return [mask, np.empty((2, 3, 4), np.uint32), 1]


ENTRIES = {
    "separable_3d": Entry(
        _separable_3d,
        (
            Array("image", 3, False, np.float16),
            Array("wz", 1, False, np.float32),
            Array("wy", 1, False, np.float32),
            Array("wx", 1, False, np.int64),
            Array("out", 3, True, np.float32),
        ),
    ),
    "uniform_counts": Entry(
        _uniform_counts,
        (
            Array("values", 1, False, np.float32),
            Array("edges", 1, False, np.float32),
            Array("counts", 1, True, np.int32),
        ),
    ),
    "uniform_codes": Entry(
        _uniform_codes,
        (
            Array("values", 1, False, np.float32),
            Array("edges", 1, False, np.int64),
            Array("centres", 1, False, np.float32),
            Array("codes", 1, True, np.int16),
            Array("counts", 1, True, np.uint64),
        ),
    ),
    "label_extents": Entry(
        _label_extents,
        (
            Array("labels", 3, False, np.float64),
            Array("sizes", 1, True, np.int32),
            Array("first", 1, True, np.float64),
            Array("box", 2, True, np.uint64),
        ),
    ),
    "apply_table": Entry(
        _apply_table,
        (
            Array("labels", None, False, np.int16),
            Array("table", 1, False, np.int64),
            Array("out", None, True, np.uint64),
        ),
    ),
    "label_mask": Entry(
        _label_mask,
        (
            Array("mask", 3, False, np.uint16),
            Array("out", 3, True, np.int64),
            None,
        ),
    ),
}


def _exported() -> set[str]:
    """The functions the C module's method table exports."""
    names = (name for name in dir(_loops) if not name.startswith("_"))
    return {name for name in names if callable(getattr(_loops, name))}


def _non_contiguous(a: np.ndarray) -> np.ndarray:
    """``a``'s values in an array of the same shape with every other item of a wider one."""
    wide = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), a.dtype)
    view = wide[..., ::2]
    view[...] = a
    assert not view.flags.c_contiguous
    return view


def _read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.setflags(write=False)
    return a


# One bad call: the entry point, an id, its arguments from the valid ones, and what it raises.
Case = tuple[str, str, Callable[[list[Any]], list[Any]], type[Exception], str]


def _with(index: int, make: Callable[[list[Any]], Any]) -> Callable[[list[Any]], list[Any]]:
    """The valid arguments with argument ``index`` replaced by ``make(arguments)``."""

    def build(args: list[Any]) -> list[Any]:
        args = list(args)
        args[index] = make(args)
        return args

    return build


def _generic_cases() -> list[Case]:
    """The cases every entry point has: argument count, and for each array argument
    another object, another element type, a non-contiguous layout, an extra axis where the
    axes are fixed, and a read-only one where it is written."""
    cases: list[Case] = []
    for fn, entry in ENTRIES.items():
        count = len(entry.arrays)
        exactly = f"exactly {count} arguments"
        cases += [
            (fn, "too few arguments", lambda a: a[:-1], TypeError, exactly),
            (fn, "too many arguments", lambda a: [*a, a[-1]], TypeError, exactly),
            (fn, "no arguments", lambda a: [], TypeError, exactly),
        ]
        for i, spec in enumerate(entry.arrays):
            if spec is None:
                continue
            name, dtype = spec.name, np.dtype(spec.wrong_dtype)
            # fmt: off
            cases += [
                (fn, f"{name} a list", _with(i, lambda a, i=i: a[i].tolist()),
                 TypeError, f"^{name}: expected an array, got list"),
                (fn, f"{name} a number", _with(i, lambda a: 1.0),
                 TypeError, f"^{name}: expected an array, got float"),
                (fn, f"{name} of {dtype.name}", _with(i, lambda a, i=i, t=dtype: a[i].astype(t)),
                 TypeError, f"^{name}: (expected|unsupported)"),
                (fn, f"{name} not C-contiguous", _with(i, lambda a, i=i: _non_contiguous(a[i])),
                 ValueError, f"^{name}: ndarray is not C-contiguous"),
            ]
            if spec.ndim is not None:
                cases.append(
                    (fn, f"{name} with an extra axis", _with(i, lambda a, i=i: a[i][None]),
                     ValueError, f"^{name}: expected {spec.ndim} ax[ie]s, got {spec.ndim + 1}"))
            if spec.writable:
                cases += [
                    (fn, f"{name} read-only", _with(i, lambda a, i=i: _read_only(a[i])),
                     ValueError, f"^{name}: buffer source array is read-only"),
                    (fn, f"{name} bytes", _with(i, lambda a, i=i: a[i].tobytes()),
                     ValueError, f"^{name}: .*not writable"),
                ]
            # fmt: on
    return cases


RADII = "image must be out's shape plus the kernel radii"
BINS = r"needs n centres and counts, n \+ 1 edges, 2n <= 65534"
ROWS = r"sizes, first and box must have n \+ 1 rows"
CONNECTIVITY = "connectivity must be 1, 2 or 3"


def _edges_with(index: int, value: float) -> Callable[[list[Any]], np.ndarray]:
    def make(args: list[Any]) -> np.ndarray:
        edges = args[1].copy()
        edges[index] = value
        return edges

    return make


def _labels_with(value: int, dtype: type) -> Callable[[list[Any]], np.ndarray]:
    def make(args: list[Any]) -> np.ndarray:
        labels = args[0].astype(dtype)
        labels.flat[5] = value
        return labels

    return make


# Each entry point's own cases: sizes that do not fit together, parameters out of range.
# fmt: off
SPECIFIC: list[Case] = [
    ("separable_3d", "image too small", _with(0, lambda a: a[0][:, :, :-1].copy()), ValueError,
     RADII),
    ("separable_3d", "image too large", _with(0, lambda a: np.ones((6, 6, 7))), ValueError, RADII),
    ("separable_3d", "out too large", _with(4, lambda a: np.empty((3, 4, 6))), ValueError, RADII),
    ("separable_3d", "no weights", _with(2, lambda a: np.zeros(0)), ValueError, RADII),
    ("separable_3d", "2D image", _with(0, lambda a: a[0][0].copy()), ValueError,
     "^image: expected 3 axes, got 2"),
    ("separable_3d", "complex image", _with(0, lambda a: a[0].astype(complex)), TypeError,
     "^image: unsupported element type"),
    ("separable_3d", "big-endian image", _with(0, lambda a: a[0].astype(">f8")), TypeError,
     "^image: unsupported element type"),
    ("uniform_counts", "counts too short", _with(2, lambda a: np.zeros(3, np.int64)), ValueError,
     "edges must have one more item than counts"),
    ("uniform_counts", "no bins", lambda a: [a[0], np.zeros(1), np.zeros(0, np.int64)],
     ValueError, "edges must have one more item than counts"),
    ("uniform_counts", "edges falling", _with(1, lambda a: a[1][::-1].copy()), ValueError,
     "^edges: must increase strictly"),
    ("uniform_counts", "a bin of no width", _with(1, _edges_with(2, 0.25)), ValueError,
     "^edges: must increase strictly"),
    ("uniform_counts", "a NaN edge inside", _with(1, _edges_with(2, np.nan)), ValueError,
     "^edges: must increase strictly"),
    ("uniform_counts", "an infinite first edge", _with(1, _edges_with(0, -np.inf)), ValueError,
     "^edges: the first and last edge must be finite"),
    ("uniform_counts", "a NaN last edge", _with(1, _edges_with(-1, np.nan)), ValueError,
     "^edges: the first and last edge must be finite"),
    ("uniform_counts", "a width past the doubles",
     _with(1, lambda a: np.array([-1e308, 0.0, 1e308, 1.5e308, 1.7e308])), ValueError,
     "^edges: the range's width overflows"),
    ("uniform_codes", "centres too short", _with(2, lambda a: a[2][:-1].copy()), ValueError,
     BINS),
    ("uniform_codes", "counts too long", _with(4, lambda a: np.zeros(5, np.int64)), ValueError,
     BINS),
    ("uniform_codes", "edges too short", _with(1, lambda a: a[1][:-1].copy()), ValueError, BINS),
    ("uniform_codes", "no bins",
     lambda a: [a[0], np.zeros(1), np.zeros(0), a[3], np.zeros(0, np.int64)], ValueError, BINS),
    ("uniform_codes", "more bins than the codes hold",
     lambda a: [a[0], np.arange(32769.0), np.arange(32768.0) + 0.5, a[3],
                np.zeros(32768, np.int64)], ValueError, BINS),
    ("uniform_codes", "codes too short", _with(3, lambda a: np.empty(9, np.uint16)), ValueError,
     "codes and values differ in size"),
    ("uniform_codes", "edges falling", _with(1, lambda a: a[1][::-1].copy()), ValueError,
     "^edges: must increase strictly"),
    ("uniform_codes", "an infinite last edge", _with(1, _edges_with(-1, np.inf)), ValueError,
     "^edges: the first and last edge must be finite"),
    ("label_extents", "first too short", _with(2, lambda a: np.zeros(3, np.int64)), ValueError,
     ROWS),
    ("label_extents", "box too long", _with(3, lambda a: np.zeros((5, 6), np.int64)), ValueError,
     ROWS),
    ("label_extents", "box of 5 columns", _with(3, lambda a: np.zeros((4, 5), np.int64)),
     ValueError, ROWS),
    ("label_extents", "no rows",
     lambda a: [a[0], np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 6), np.int64)],
     ValueError, ROWS),
    ("label_extents", "a label past n", _with(0, _labels_with(4, np.uint16)), ValueError,
     r"^labels: a label outside 0\.\.3"),
    ("label_extents", "a huge uint64 label", _with(0, _labels_with(2**64 - 1, np.uint64)),
     ValueError, r"^labels: a label outside 0\.\.3"),
    ("label_extents", "a negative label", _with(0, _labels_with(-1, np.int8)), ValueError,
     r"^labels: a label outside 0\.\.3"),
    ("label_extents", "the most negative label", _with(0, _labels_with(-(2**63), np.int64)),
     ValueError, r"^labels: a label outside 0\.\.3"),
    ("apply_table", "a label past the table", _with(1, lambda a: a[1][:4].copy()), IndexError,
     "^labels: a label outside the table's 4 rows"),
    ("apply_table", "an empty table", _with(1, lambda a: np.zeros(0, np.uint32)), IndexError,
     "^labels: a label outside the table's 0 rows"),
    ("apply_table", "out flat", _with(2, lambda a: np.empty(6, np.uint32)), ValueError,
     "out and labels differ in shape"),
    ("apply_table", "out transposed", _with(2, lambda a: np.empty((3, 2), np.uint32)), ValueError,
     "out and labels differ in shape"),
    ("apply_table", "out too large", _with(2, lambda a: np.empty((2, 4), np.uint32)), ValueError,
     "out and labels differ in shape"),
    ("apply_table", "signed labels", _with(0, lambda a: a[0].astype(np.int64)), TypeError,
     "^labels: expected unsigned integers"),
    ("apply_table", "float table", _with(1, lambda a: a[1].astype(np.float64)), TypeError,
     "^table: expected uint32 or uint64"),
    ("apply_table", "2D table", _with(1, lambda a: a[1][None].copy()), ValueError,
     "^table: expected 1 axis, got 2"),
    ("label_mask", "connectivity 0", _with(2, lambda a: 0), ValueError, CONNECTIVITY),
    ("label_mask", "negative connectivity", _with(2, lambda a: -1), ValueError, CONNECTIVITY),
    ("label_mask", "connectivity 4", _with(2, lambda a: 4), ValueError, CONNECTIVITY),
    ("label_mask", "connectivity a float", _with(2, lambda a: 1.0), TypeError, "integer"),
    ("label_mask", "connectivity a string", _with(2, lambda a: "1"), TypeError, "integer"),
    ("label_mask", "out of another shape", _with(1, lambda a: np.empty((2, 4, 3), np.uint32)),
     ValueError, "mask and out differ in shape"),
    ("label_mask", "out one plane short", _with(1, lambda a: np.empty((1, 3, 4), np.uint32)),
     ValueError, "mask and out differ in shape"),
    ("label_mask", "bool out", _with(1, lambda a: np.empty((2, 3, 4), bool)), TypeError,
     "^out: expected uint32"),
]
# fmt: on

CASES = _generic_cases() + SPECIFIC


def test_every_exported_function_has_cases():
    """A function added to the method table needs its entry (and cases) here."""
    assert _exported() == set(ENTRIES)
    assert {case[0] for case in SPECIFIC} == set(ENTRIES)


@pytest.mark.parametrize("fn", sorted(ENTRIES))
def test_the_valid_arguments_are_accepted(fn: str):
    """The arguments the bad ones are made from pass (so each case has one fault)."""
    getattr(_loops, fn)(*ENTRIES[fn].good())


def _params(cases: list[Case]) -> list[Any]:
    return [pytest.param(fn, build, error, match, id=f"{fn}: {what}")
            for fn, what, build, error, match in cases]  # fmt: skip


@pytest.mark.parametrize(("fn", "build", "error", "match"), _params(CASES))
def test_bad_arguments_raise(fn: str, build, error: type[Exception], match: str):
    args = build(ENTRIES[fn].good())
    with pytest.raises(error, match=match):
        getattr(_loops, fn)(*args)


@pytest.mark.parametrize("fn", sorted(ENTRIES))
def test_keyword_arguments_are_refused(fn: str):
    with pytest.raises(TypeError, match="keyword arguments"):
        getattr(_loops, fn)(*ENTRIES[fn].good(), extra=1)


# the cases refused before a loop runs (not a label found past n or the table on the way)
CHECKED_FIRST = [case for case in SPECIFIC if "a label outside" not in case[4]]


@pytest.mark.parametrize(("fn", "build", "error", "match"), _params(CHECKED_FIRST))
def test_a_refused_call_writes_nothing(fn: str, build, error: type[Exception], match: str):
    """Sizes and parameters are checked before a loop runs: no output is half written."""
    args = build(ENTRIES[fn].good())
    outputs = [
        (a, a.copy()) for a, spec in zip(args, ENTRIES[fn].arrays, strict=True)
        if spec is not None and spec.writable and isinstance(a, np.ndarray)
    ]  # fmt: skip
    with pytest.raises(error, match=match):
        getattr(_loops, fn)(*args)
    for a, before in outputs:
        np.testing.assert_array_equal(a, before)
