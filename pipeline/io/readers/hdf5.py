"""HDF5 datasets through h5py: the dataset path from the config, chunked reads.

Axes come from the dataset's ``axes`` or ``DIMENSION_LABELS`` attribute (as ilastik,
BigDataViewer and h5py's dimension scales write them), else from its number of dimensions;
voxel size from an ``element_size_um`` attribute (ilastik, Fiji) or the config.
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import DataError
from pipeline.io.readers.source import Source, axis_letters, cached, register_reader, stamp

SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise DataError(
            "HDF5 input needs h5py: pip install 'segpipe[medical]' (or pip install h5py)"
        ) from None
    return h5py


def open_hdf5(path: str, dataset: str | None) -> Source:
    """Dataset ``dataset`` of an HDF5 file, metadata only.

    Raises
    ------
    DataError
        Not a readable HDF5 file, no ``dataset`` given (the message lists the datasets),
        or no such dataset.
    """
    h5py = _h5py()
    try:
        fh = h5py.File(path, "r")
    except Exception as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None
    with fh:
        if dataset is None:
            found: list[str] = []
            fh.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
            if len(found) != 1:
                raise DataError(
                    f"{path}: give input.dataset, one of: {', '.join(found[:10]) or 'none'}"
                )
            dataset = found[0]
        node = fh.get(dataset)
        if not isinstance(node, h5py.Dataset):
            raise DataError(f"{path}: input.dataset {dataset!r} is not a dataset in this file")
        shape, dtype = tuple(node.shape), node.dtype
        axes = _axes(node)
        chunks = node.chunks or shape
        size = node.attrs.get("element_size_um")
    if axes is None or len(axes) != len(shape):
        raise DataError(
            f"{path}: cannot tell the axes of dataset {dataset!r} of shape {shape} "
            "(give it an 'axes' attribute such as 'zyx')"
        )
    spatial = [i for i, c in enumerate(axes) if c in "zyx"]
    spacing, unit = (1.0,) * len(spatial), None
    if size is not None and len(size) == len(spatial):
        spacing, unit = tuple(float(s) for s in size), "micrometer"
    return Source(
        "hdf5",
        path,
        shape,
        axes,
        dtype.str,
        tuple(int(chunks[i]) for i in spatial),
        spacing,
        unit,
        dataset=dataset,
    )


def _axes(node) -> str | None:
    raw = node.attrs.get("axes")
    if raw is None:
        labels = [d.label for d in node.dims]
        raw = labels if all(labels) else None
    if raw is None:
        return {2: "yx", 3: "zyx"}.get(node.ndim)
    if isinstance(raw, bytes):
        raw = raw.decode()
    return axis_letters(list(raw) if isinstance(raw, str) else raw)


def _read_hdf5(src: Source, index: tuple) -> np.ndarray:
    h5py = _h5py()
    key = ("hdf5", src.path, stamp(src.path))
    fh = cached(key, lambda: h5py.File(src.path, "r"), lambda f: f.close())
    return np.asarray(fh[src.dataset][index])


register_reader("hdf5", _read_hdf5)
