"""Kernels the ops and the engine share: compiled block loops, local labelling with the
summary stitching needs, histograms and order statistics, and the protocols of reduction
passes. Plain numpy and C; no Dask."""
