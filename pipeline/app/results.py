"""What the ways to run a config return: a run, a batch, a dry run, one block."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FIELDS = ("name", "input", "timepoint", "status", "count", "output", "seconds", "error")


@dataclass(frozen=True)
class RunResult:
    """What a run produced."""

    count: int
    labels_path: Path
    summary_path: Path
    summary: dict
    earlier: bool = False  # the output held a finished run of this config already


@dataclass
class BatchResult:
    """What a batch run did: one row per input (see :data:`FIELDS`)."""

    rows: list[dict] = field(default_factory=list)
    table_path: Path | None = None

    @property
    def failed(self) -> list[dict]:
        """The rows of inputs that failed."""
        return [r for r in self.rows if r["status"] == "failed"]


@dataclass(frozen=True)
class PlannedInput:
    """What a dry run found for one input: where it is, what it is, where it would go."""

    name: str
    input: str
    output: str
    shape: tuple[int, ...]
    blocks: int


@dataclass(frozen=True)
class BlockResult:
    """What one block computed on its own gave."""

    block: tuple[int, ...]
    box: tuple[tuple[int, int], ...]
    dtype: str
    nonzero: int  # voxels
    ids: int  # distinct non-zero values
    resumed_blocks: dict = field(default_factory=dict)  # pass -> blocks loaded from checkpoints
