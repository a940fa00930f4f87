"""A source that resizes another block by block (see :mod:`pipeline.ops.resample`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.ops.resample import Resize, input_box, resize_region

Box = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ResizedSource:
    """The resized image, read lazily: each block reads the input region it needs."""

    base: object  # the input's Source
    resize: Resize

    @property
    def path(self) -> str:
        return self.base.path

    @property
    def shape(self) -> tuple[int, ...]:
        return self.resize.out_shape

    @property
    def dtype(self) -> str:
        return self.resize.out_dtype.str

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size of the resized grid: the input's, times input voxels per output voxel."""
        return tuple(
            float(s * r) for s, r in zip(self.base.spacing, self.resize.ratios, strict=True)
        )

    @property
    def unit(self) -> str | None:
        return self.base.unit

    @property
    def axes(self) -> str:
        return self.base.axes

    @property
    def spatial_axes(self) -> str:
        return self.base.spatial_axes

    @property
    def color(self) -> bool:
        return False

    @property
    def samples(self) -> int:
        return 1

    @property
    def storage_chunks(self) -> tuple[int, ...]:
        return (1,) * len(self.shape)

    def read(self, box: Box) -> np.ndarray:
        """The resized image on ``box``."""
        region = input_box(self.resize, box)
        return resize_region(self.base.read(region), region, box, self.resize)
