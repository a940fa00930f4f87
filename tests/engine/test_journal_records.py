"""Journal records hold data only: every kind of block result a pass records reads back
exactly, and a file that is not a record (a pickle above all) is refused, unrun, with one
line naming it."""

from __future__ import annotations

import io
import json
import os
import pickle
import shlex
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zarr
from scipy import ndimage as ndi

from pipeline.cli import main
from pipeline.engine import journal, records
from pipeline.engine.journal import Journal, load_record, progress, save_record
from pipeline.engine.stitch import PackedFaces, packed
from pipeline.errors import DataError
from pipeline.kernels.labels import summarise_block
from pipeline.measure.objects import Written, block_partial

RNG = np.random.default_rng(5)
LABELS = (np.cumsum(RNG.random((16, 16, 16)) < 0.01).reshape(16, 16, 16) % 40).astype(np.int32)


def _summary(values: bool, peaks: bool):
    source = RNG.random(LABELS.shape) if peaks else None
    vals = (LABELS % 3).astype(np.uint16) if values else None
    return packed(summarise_block(LABELS, vals, (16, 0, 16), (48, 48, 48), source))


def _written() -> Written:
    piece = ((1, 2), np.arange(6, dtype=np.uint32).reshape(2, 3))
    image = ((1, 2), np.arange(6, dtype=np.uint16).reshape(2, 3))
    return Written(np.arange(4, dtype=np.uint32), np.arange(4, dtype=np.int64), piece, image)


# What the passes record (found by recording every save_record of the resume, engine and
# example-config runs), and the plain values besides.
VALUES = {
    "none": None,
    "bool": True,
    "int": 7,
    "int64 extremes": [-(2**63), 2**64 - 1],
    "float": 0.25,
    "nan": float("nan"),
    "str": "label",
    "bytes": b"\x00\x01",
    "list": [1, [2.5, None]],
    "dict, str/int/tuple keys": {"a": 1, 2: "b", (3, 4): (5,), None: [6]},
    "tuple in tuple": ((1, 2), (), (3,)),
    "range of a float image": (np.float64(0.5), np.float64(3.0)),
    "range of an int32 image": (np.int32(-4), np.int32(9)),
    "numpy scalars": [np.bool_(True), np.uint8(3), np.float32(1.5), np.complex128(1j)],
    "histogram counts": np.arange(65536, dtype=np.int64),
    "0-d array": np.array(3.5),
    "empty array": np.zeros((0, 2), np.int64),
    "Fortran-order array": np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
    "strided view": np.arange(20, dtype=np.float32).reshape(4, 5)[::2, 1::2],
    "big-endian array": np.arange(5, dtype=">u2"),
    "integer sums (object array)": np.array([2**62, 12], dtype=object),
    "order-statistic parts": [RNG.random(9), np.arange(4096)],
    "k-means sample": (np.arange(5), RNG.random((5, 2))),
    "peak candidates": (np.arange(6, dtype=np.int64).reshape(3, 2), RNG.random(3), 11),
    "label block": (LABELS, None, None),
    "block summary": _summary(values=False, peaks=False),
    "block summary with values and peaks": _summary(values=True, peaks=True),
    "write pass, nothing gathered": (Written(), None),
    "write pass, ids, overview, measurements": (
        _written(),
        block_partial(LABELS, RNG.random(LABELS.shape), ((0, 16),) * 3, 5),
    ),
    "write pass, integer measurements": (Written(), block_partial(LABELS, LABELS, ((0, 16),) * 3)),
}


def _same(a, b) -> None:
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape)
        if a.flags.c_contiguous or a.flags.f_contiguous:  # the same layout (else C order)
            assert b.flags.c_contiguous == a.flags.c_contiguous
            assert b.flags.f_contiguous == a.flags.f_contiguous
        assert b.flags.writeable >= a.flags.writeable
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        if a.dtype == object:
            assert [type(x) for x in a.ravel()] == [type(x) for x in b.ravel()]
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, PackedFaces):
        assert (a.dtypes, a.shapes, a.blobs) == (b.dtypes, b.shapes, b.blobs)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif hasattr(a, "__dataclass_fields__"):
        for name in a.__dataclass_fields__:
            _same(getattr(a, name), getattr(b, name))
    else:
        assert a == b or (a != a and b != b), (a, b)


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
def test_every_recorded_kind_reads_back_exactly(tmp_path, value):
    path = str(tmp_path / "b0_0.rec")
    assert save_record(path, value) is value
    assert Path(path).read_bytes().startswith(records.MAGIC)
    _same(value, load_record(path))


class _Custom:
    pass


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({1, 2}, "builtins.set"),
        (_Custom(), "_Custom"),
        ([np.array(["a"], dtype=object)], "numpy.ndarray of dtype object"),
        (np.array(["ab"]), "numpy.ndarray of dtype <U2"),
        (np.datetime64("2020-01-01"), "numpy.datetime64"),
        ((2**64,), "beyond 64 bits"),
        (frozenset(), "builtins.frozenset"),
    ],
)
def test_what_no_record_holds_is_a_type_error_naming_it(value, named):
    with pytest.raises(TypeError, match=named):
        records.dump(value, io.BytesIO())


class _Payload:
    """A pickle that, loaded, runs a shell command creating ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def _refused(path: Path) -> str:
    with pytest.raises(DataError) as info:
        load_record(str(path))
    said = str(info.value)
    assert str(path) in said and "not a segpipe journal record" in said
    assert len(said.splitlines()) == 1
    return said


def test_a_pickle_is_refused_and_not_run(tmp_path):
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(control)))
    assert control.exists()  # as a pickle, the payload runs
    marker = tmp_path / "marker"
    path = tmp_path / "b0_0_0.rec"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=pickle.HIGHEST_PROTOCOL))
    assert "no segpipe record header" in _refused(path)
    assert not marker.exists()


def _tagged(code: int, *items) -> bytes:
    return records.MAGIC + msgpack.packb([msgpack.ExtType(code, b""), *items])


GOOD = io.BytesIO()
records.dump((np.arange(6, dtype=np.int32), "x"), GOOD)

MALFORMED = {
    "empty file": (b"", "no segpipe record header"),
    "another version's header": (
        b"SEGPIPE-REC9\n" + GOOD.getvalue()[len(records.MAGIC) :],
        "header",
    ),
    "truncated": (GOOD.getvalue()[:-9], "incomplete"),
    "trailing bytes": (GOOD.getvalue() + b"\x00", "bytes after its end"),
    "object dtype": (_tagged(records.ARRAY, "|O", [2], "C", bytes(16)), "dtype '|O' not allowed"),
    "shape and bytes disagree": (
        _tagged(records.ARRAY, "<i4", [2, 3], "C", bytes(20)),
        "20 bytes for an array of shape (2, 3)",
    ),
    "negative shape": (_tagged(records.ARRAY, "<i4", [-1], "C", b""), "bad shape"),
    "bad order": (_tagged(records.ARRAY, "<i4", [1], "X", bytes(4)), "bad array"),
    "scalar of the wrong size": (_tagged(records.SCALAR, "<f8", b"\x00"), "bad scalar"),
    "object array of other than ints": (
        _tagged(records.INTS, [1], [1.5]),
        "object array holds other than ints",
    ),
    "unknown extension type": (
        records.MAGIC + msgpack.packb([msgpack.ExtType(42, b"")]),
        "unknown extension type 42",
    ),
    "a tag with a payload": (
        records.MAGIC + msgpack.packb([msgpack.ExtType(records.TUPLE, b"os.system")]),
        "unknown extension type 1",
    ),
    "msgpack timestamp": (
        records.MAGIC + msgpack.packb([msgpack.Timestamp(0)]),
        "extension type out of place",
    ),
    "tag out of place": (
        records.MAGIC + msgpack.packb([1, msgpack.ExtType(records.TUPLE, b"")]),
        "extension type out of place",
    ),
    "class not in the list": (_tagged(records.OBJECT, "posix.system", "touch x"), "no class"),
    "class, wrong fields": (_tagged(records.OBJECT, "Partial", 1), "1 fields for Partial"),
    "faces of a disallowed dtype": (
        _tagged(records.OBJECT, "PackedFaces", ["|O"], [[1]], [b""]),
        "dtype '|O' not allowed",
    ),
    "too few items": (_tagged(records.SCALAR, "<f8"), "bad value of tag 3"),
    "unhashable key": (
        records.MAGIC + b"\x81\x91\x01\x02",  # {[1]: 2}
        "unhashable",
    ),
    "not utf-8": (records.MAGIC + b"\xa1\xff", "UnicodeDecodeError"),
}


@pytest.mark.parametrize(("data", "why"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_record_is_one_line_naming_it(tmp_path, data, why):
    path = tmp_path / "b1_0.rec"
    path.write_bytes(data)
    assert why in _refused(path)


def test_progress_counts_records_and_a_stale_pickle_is_computed_again(tmp_path):
    root = tmp_path / ".journal"
    first = Journal(root, "sha")
    first.start()
    dsk = {("part", 0): (sum, [1, 2]), ("part", 1): (sum, [3, 4])}
    first.wrap(dsk, {(0,): ("part", 0), (1,): ("part", 1)}, "range")
    folder = root / "001-range"
    save_record(str(folder / "b0.rec"), 3)
    (folder / "b1.pkl").write_bytes(pickle.dumps(7))  # an earlier version's record
    assert [(p["done"], p["blocks"]) for p in progress(root)] == [(1, 2)]
    again = {("part", 0): (sum, [1, 2]), ("part", 1): (sum, [3, 4])}
    Journal(root, "sha").wrap(again, {(0,): ("part", 0), (1,): ("part", 1)}, "range")
    assert again[("part", 0)] == (load_record, str(folder / "b0.rec"))
    assert again[("part", 1)][0] is journal.compute_and_record  # not loaded: computed


def test_a_planted_pickle_stops_the_resumed_run_unrun(tmp_path, capsys):
    """A run fails on a damaged input chunk, leaving its journal; one record is replaced
    by a pickle; the rerun (input repaired) exits 3 with one line naming that file."""
    rng = np.random.default_rng(2)
    img = ndi.gaussian_filter(rng.random((24, 48, 48)), 2.0)
    img = (60000 * (img - img.min())).astype(np.uint16)
    arr = zarr.create_array(
        str(tmp_path / "in.zarr"), shape=img.shape, chunks=(8, 16, 16), dtype=img.dtype
    )
    arr[:] = img
    cfg = tmp_path / "c.json"
    out = tmp_path / "out"
    cfg.write_text(
        json.dumps(
            {
                "input": {"path": str(tmp_path / "in.zarr"), "chunks": [8, 16, 16]},
                "steps": {
                    "mask": {"op": "threshold", "method": "otsu"},
                    "cells": {"op": "label", "connectivity": 1},
                },
                "output": {"path": str(out), "labels": "cells"},
                # Blocks in order: those before the damaged one are recorded.
                "engine": {"scheduler": "sync"},
            }
        )
    )
    chunk = tmp_path / "in.zarr" / "c" / "1" / "0" / "2"
    good = chunk.read_bytes()
    chunk.write_bytes(b"not a chunk" * 10)
    assert main(["run", str(cfg)]) == 3
    chunk.write_bytes(good)
    capsys.readouterr()
    recorded = sorted((out / ".journal").rglob("*.rec"))
    assert recorded  # the blocks done before the failure
    marker = tmp_path / "marker"
    planted = recorded[0]
    planted.write_bytes(pickle.dumps(_Payload(marker), protocol=pickle.HIGHEST_PROTOCOL))

    assert main(["run", str(cfg)]) == 3
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert f"{planted}: not a segpipe journal record" in lines[0]
    assert "Traceback" not in err
    assert not marker.exists()
    assert not (out / "summary.json").exists()
