"""Readers (lazy, worker-safe) and writers (OME-Zarr labels)."""
