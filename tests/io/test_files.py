"""Buffers written in pieces come back byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.io.files import PIECE, write_pieces


@pytest.mark.parametrize("size", [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 5])
def test_bytes_round_trip(tmp_path, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "f"
    with open(path, "wb") as fh:
        write_pieces(fh, data)
    assert path.read_bytes() == data


def test_arrays_of_any_type_and_shape(tmp_path):
    arrays = [
        np.random.default_rng(0).random((70, 90, 11)),  # float64, several pieces
        np.arange(12, dtype=np.uint16).reshape(3, 4),
        np.zeros((0, 5), np.uint32),
    ]
    path = tmp_path / "f"
    with open(path, "wb") as fh:
        for a in arrays:
            write_pieces(fh, a.data)
    assert path.read_bytes() == b"".join(a.tobytes() for a in arrays)
