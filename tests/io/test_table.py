"""Object tables: rows with their block lists, and a table of no objects."""

from __future__ import annotations

import csv

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.io.table import write_table


@pytest.mark.parametrize("n", [0, 1, 3])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_rows_and_block_lists(tmp_path, fmt, n):
    columns = {"label": np.arange(1, n + 1), "area": np.arange(n) * 1.5}
    per_row = [[0], [1, 2], [4, 5, 6]][:n]
    offsets = np.cumsum([0] + [len(b) for b in per_row])
    values = np.array([v for b in per_row for v in b], np.int64)
    path = tmp_path / f"t.{fmt}"
    write_table(path, columns, (offsets, values), fmt, {"run": "x"})
    if fmt == "csv":
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [r["label"] for r in rows] == [str(i) for i in range(1, n + 1)]
        assert [r["blocks"] for r in rows] == [";".join(map(str, b)) for b in per_row]
    else:
        table = pq.read_table(path)
        assert table.num_rows == n
        assert table.column("blocks").to_pylist() == per_row
