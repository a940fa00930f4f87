"""Per-object measurements: partial aggregates per block merged into a table, properties
measured on crops of the label image, and small overview projections."""
