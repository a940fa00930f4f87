"""Object tables as Parquet (with the run's provenance in the file metadata) or CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np


def write_table(
    path: Path,
    columns: dict[str, np.ndarray],
    blocks: tuple[np.ndarray, np.ndarray],
    fmt: str,
    provenance: dict,
) -> None:
    """Write one row per object: ``columns`` and the list of blocks each object touches.

    ``blocks`` is ``(offsets, values)``: row ``j``'s blocks are
    ``values[offsets[j]:offsets[j + 1]]``. Parquet keeps them as a list column and
    ``provenance`` as JSON under the ``segpipe`` key of the schema metadata; CSV joins
    the blocks with ``;``.
    """
    offsets, values = blocks
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = {k: pa.array(v) for k, v in columns.items()}
        small = len(values) < 2**31  # list offsets are int32, large list offsets int64
        lists = pa.ListArray if small else pa.LargeListArray
        arrays["blocks"] = lists.from_arrays(
            pa.array(offsets.astype(np.int32 if small else np.int64)),
            pa.array(values.astype(np.int64)),
        )
        meta = {"segpipe": json.dumps(provenance)}
        pq.write_table(pa.table(arrays).replace_schema_metadata(meta), path)
        return
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*columns, "blocks"])
        joined = [
            ";".join(map(str, values[offsets[j] : offsets[j + 1]].tolist()))
            for j in range(len(offsets) - 1)
        ]
        for row in zip(*[c.tolist() for c in columns.values()], joined, strict=True):
            w.writerow(row)
