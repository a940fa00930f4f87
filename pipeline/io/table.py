"""Object tables as Parquet (with the run's provenance in the file metadata) or CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np


def write_table(
    path: Path,
    columns: dict[str, np.ndarray],
    blocks: list[np.ndarray],
    fmt: str,
    provenance: dict,
) -> None:
    """Write one row per object: ``columns`` and the list of blocks each object touches.

    Parquet keeps ``blocks`` as a list column and ``provenance`` as JSON under the
    ``segpipe`` key of the schema metadata; CSV joins the blocks with ``;``.
    """
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = {k: pa.array(v) for k, v in columns.items()}
        arrays["blocks"] = pa.array([b.tolist() for b in blocks], type=pa.list_(pa.int64()))
        meta = {"segpipe": json.dumps(provenance)}
        pq.write_table(pa.table(arrays).replace_schema_metadata(meta), path)
        return
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*columns, "blocks"])
        joined = [";".join(map(str, b.tolist())) for b in blocks]
        for row in zip(*[c.tolist() for c in columns.values()], joined, strict=True):
            w.writerow(row)
