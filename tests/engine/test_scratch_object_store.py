"""Scratch in an object store: block files, several boxes in one file, halo files deleted
by their last reader, folders dropped in the background, all of it removed at the end."""

from __future__ import annotations

import numpy as np

from pipeline.engine import scratch
from pipeline.engine.scratch import Scratch
from pipeline.io import storage
from pipeline.io.locations import ObjectPath


def test_blocks_round_trip_in_an_object_store(s3):
    bucket = s3.bucket()
    store = Scratch(ObjectPath(f"s3://{bucket}/out/.scratch"), budget=1 << 30)
    path = store.path("smooth", (0, 1, 2))
    assert path == f"s3://{bucket}/out/.scratch/n1/b0_1_2.blk"
    data = np.random.default_rng(0).random((4, 5, 6))
    scratch.save(path, data)
    np.testing.assert_array_equal(scratch.load(path), data)
    mask = data > 0.5
    scratch.save(store.path("mask", (0,)), mask)
    np.testing.assert_array_equal(scratch.load(store.path("mask", (0,))), mask)
    labels = (data * 100).astype(np.uint32)
    scratch.save(store.path("local", (1,)), labels, compress=True)
    np.testing.assert_array_equal(scratch.load(store.path("local", (1,))), labels)
    assert storage.file_exists(path) and not storage.file_exists(store.path("smooth", (9, 9, 9)))

    halo = store.path("halo", (0,))
    parts = {((0, 2), (0, 5)): data[0, :2], ((2, 4), (0, 5)): data[0, 2:4]}
    scratch.save_parts(halo, parts)
    scratch.expect_readers(halo, 2)
    for box, want in parts.items():
        np.testing.assert_array_equal(scratch.load_part(halo, box), want)
        scratch.done_reading(halo)
    assert not storage.file_exists(halo)  # the last reader deleted it

    store.drop_later("smooth")
    store.wait()
    assert not storage.file_exists(path)
    store.remove()
    assert s3.objects(bucket) == {}
