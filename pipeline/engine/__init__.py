"""The only layer that builds Dask graphs: block plans, fused overlap, passes, stitching."""
