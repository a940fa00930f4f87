"""Page-cache write time of a 16 MB block: one write call against pieces.

    .venv/bin/python benchmarks/bench_write_pieces.py [--files 64] [--rest 8]

Writes ``--files`` files of 16 MB (one 128³ float64 block each) into benchmarks/work,
once per way of writing, and prints the time per file. Before each way the script rests
``--rest`` seconds: on a virtual machine the host takes back memory the guest has freed
for a while, and the page cache's next large allocations then cost the most. The files
are deleted after each way.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pipeline.io.files import PIECE, write_pieces  # noqa: E402


def write_files(folder: Path, n: int, block: np.ndarray, pieces: bool) -> float:
    """Seconds per file to write ``n`` files holding ``block``."""
    start = time.perf_counter()
    for i in range(n):
        with open(folder / f"b{i}", "wb") as fh:
            if pieces:
                write_pieces(fh, block.data)
            else:
                fh.write(block.data)
    return (time.perf_counter() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--rest", type=float, default=8.0)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    folder = HERE / "work" / "write_pieces"
    folder.mkdir(parents=True, exist_ok=True)
    block = np.random.default_rng(0).random((128, 128, 128))
    print(f"{args.files} files of {block.nbytes / 1e6:.1f} MB, resting {args.rest:g} s first")
    try:
        for _ in range(args.repeat):
            for pieces in (False, True):
                time.sleep(args.rest)
                per_file = write_files(folder, args.files, block, pieces)
                way = f"{PIECE // 1024} KiB pieces" if pieces else "one call"
                print(f"  {way:16s} {per_file * 1000:6.1f} ms per file")
                for f in folder.iterdir():
                    os.remove(f)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
