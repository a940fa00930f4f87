"""Direct chunk reads and writes give exactly what zarr reads and writes."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
import zarr

from pipeline.io.zarr_chunks import (
    PARTIAL_SUFFIX,
    chunk_codec,
    open_for_writing,
    read_region,
    write_region,
)

CODECS = {
    "zstd": [zarr.codecs.ZstdCodec(level=0)],
    "blosc-lz4": [zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")],
    "zstd+crc": [zarr.codecs.ZstdCodec(level=3), zarr.codecs.Crc32cCodec()],
    "none": [],
}


def _array(path, codecs, shape=(37, 50, 29), chunks=(16, 20, 29), dtype="uint16", fill=0):
    return zarr.create_array(
        str(path),
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        compressors=codecs,
        fill_value=fill,
        overwrite=True,
    )


@pytest.mark.parametrize("name", [*CODECS, "gzip"])
def test_read_region_equals_zarr(tmp_path, name):
    rng = np.random.default_rng(1)
    codecs = CODECS.get(name, [zarr.codecs.GzipCodec()])
    arr = _array(tmp_path / "a.zarr", codecs, fill=7)
    data = rng.integers(0, 60000, arr.shape, dtype=np.uint16)
    arr[:] = data
    arr[16:32, 20:40, :] = 7  # a chunk of fill value zarr does not store
    assert not os.path.exists(tmp_path / "a.zarr" / "c" / "1" / "1" / "0")
    codec = chunk_codec(arr)
    assert codec is not None
    sels = [
        (slice(0, 16), slice(0, 20), slice(0, 29)),  # one chunk
        (slice(32, 37), slice(40, 50), slice(0, 29)),  # the last, partial chunk
        (slice(16, 32), slice(20, 40), slice(0, 29)),  # the chunk never written
        (slice(3, 35), slice(7, 49), slice(2, 27)),  # across chunks
        (slice(20, 21), slice(0, 50), slice(5, 6)),
    ]
    for sel in sels:
        got = read_region(codec, sel)
        np.testing.assert_array_equal(got, arr[sel])
        assert got.flags.writeable and got.dtype == arr.dtype


@pytest.mark.parametrize("name", list(CODECS))
@pytest.mark.parametrize("keep_empty", [True, False])
def test_written_chunks_are_zarrs_bytes(tmp_path, name, keep_empty):
    """Every chunk file equals the one zarr writes for the same data (gzip is left out:
    its header holds the time of writing)."""
    rng = np.random.default_rng(2)
    shape, chunks = (37, 50, 29), (16, 20, 29)
    data = (rng.random(shape) > 0.7).cumsum().reshape(shape).astype(np.uint32) % 1000
    data[0:16, 0:20] = 0  # an empty chunk
    ours = _array(tmp_path / "ours.zarr", CODECS[name], shape, chunks, "uint32")
    theirs = _array(tmp_path / "theirs.zarr", CODECS[name], shape, chunks, "uint32")
    theirs.with_config({"write_empty_chunks": keep_empty})[:] = data
    ranges = [range(0, n, c) for n, c in zip(shape, chunks, strict=True)]
    for start in itertools.product(*ranges):
        sel = tuple(slice(s, min(s + c, n)) for s, c, n in zip(start, chunks, shape, strict=True))
        write_region(str(tmp_path / "ours.zarr"), sel, data[sel], keep_empty)
    np.testing.assert_array_equal(ours[:], data)
    for root, _, files in os.walk(tmp_path / "theirs.zarr"):
        for f in files:
            if f == "zarr.json":
                continue
            rel = os.path.relpath(os.path.join(root, f), tmp_path / "theirs.zarr")
            with (
                open(tmp_path / "ours.zarr" / rel, "rb") as a,
                open(os.path.join(root, f), "rb") as b,
            ):
                assert a.read() == b.read(), rel
    ours_files = {
        os.path.relpath(os.path.join(r, f), tmp_path / "ours.zarr")
        for r, _, fs in os.walk(tmp_path / "ours.zarr")
        for f in fs
    }
    theirs_files = {
        os.path.relpath(os.path.join(r, f), tmp_path / "theirs.zarr")
        for r, _, fs in os.walk(tmp_path / "theirs.zarr")
        for f in fs
    }
    assert ours_files == theirs_files


def test_an_empty_chunk_written_again_is_removed(tmp_path):
    arr = _array(tmp_path / "a.zarr", CODECS["zstd"])
    sel = (slice(0, 16), slice(0, 20), slice(0, 29))
    write_region(str(tmp_path / "a.zarr"), sel, np.ones((16, 20, 29), np.uint16), False)
    assert os.path.exists(tmp_path / "a.zarr" / "c" / "0" / "0" / "0")
    write_region(str(tmp_path / "a.zarr"), sel, np.zeros((16, 20, 29), np.uint16), False)
    assert not os.path.exists(tmp_path / "a.zarr" / "c" / "0" / "0" / "0")
    np.testing.assert_array_equal(arr[sel], 0)


def test_regions_that_are_not_one_chunk_go_through_zarr(tmp_path):
    arr = _array(tmp_path / "a.zarr", CODECS["zstd"])
    sel = (slice(5, 30), slice(3, 4), slice(0, 29))
    block = np.arange(25 * 29, dtype=np.uint16).reshape(25, 1, 29)
    write_region(str(tmp_path / "a.zarr"), sel, block, True)
    np.testing.assert_array_equal(arr[sel], block)


def test_an_array_created_again_is_opened_again(tmp_path):
    path = tmp_path / "a.zarr"
    _array(path, CODECS["zstd"], dtype="uint16")
    first = open_for_writing(str(path))[0]
    _array(path, CODECS["zstd"], dtype="uint32")
    again = open_for_writing(str(path))[0]
    assert first.dtype == np.uint16 and again.dtype == np.uint32


def test_layouts_left_to_zarr(tmp_path):
    sharded = zarr.create_array(
        str(tmp_path / "s.zarr"), shape=(32, 32), chunks=(8, 8), shards=(16, 16), dtype="u2"
    )
    assert chunk_codec(sharded) is None
    v2 = zarr.create_array(str(tmp_path / "v2.zarr"), shape=(8, 8), dtype="u2", zarr_format=2)
    assert chunk_codec(v2) is None
    transposed = zarr.create_array(
        str(tmp_path / "t.zarr"),
        shape=(8, 8),
        dtype="u2",
        filters=[zarr.codecs.TransposeCodec(order=(1, 0))],
    )
    assert chunk_codec(transposed) is None


def test_reopening_labels_removes_chunks_left_half_written(tmp_path):
    """A run killed while writing a chunk leaves its temporary file; the resumed run's
    label image must not keep it."""
    from pipeline.io import ome_zarr

    path = tmp_path / "labels.ome.zarr"
    ome_zarr.create_labels(path, (8, 8), (4, 4), np.uint32, 2, "yx")
    ome_zarr.write_block(str(path), 2, ((0, 4), (0, 4)), np.ones((4, 4), np.uint32))
    chunk = path / "0" / "c" / "0" / "0"
    left = chunk.parent / ("0.4242-77" + PARTIAL_SUFFIX)
    left.write_bytes(b"half")
    before = chunk.read_bytes()
    ome_zarr.create_labels(path, (8, 8), (4, 4), np.uint32, 2, "yx")  # as a resumed run does
    assert not left.exists()
    assert chunk.read_bytes() == before


def test_reopening_an_image_removes_chunks_left_half_written(tmp_path):
    from pipeline.io import ome_zarr

    path = tmp_path / "image.ome.zarr"
    ome_zarr.create_image(path, (8, 8), (4, 4), np.uint16, 2, "yx")
    left = path / "1" / "c" / "0" / ("0.4242-77" + PARTIAL_SUFFIX)
    left.parent.mkdir(parents=True)
    left.write_bytes(b"")
    ome_zarr.create_image(path, (8, 8), (4, 4), np.uint16, 2, "yx")  # as a resumed run does
    assert not left.exists()
    assert (path / "labels" / "zarr.json").exists()
