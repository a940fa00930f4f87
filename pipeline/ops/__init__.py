"""Pure numpy operations over one block, each described by an op of its kind.

:mod:`pipeline.ops.contract` says what each kind of op declares; :mod:`pipeline.ops.catalogue`
lists the ops a config can name.
"""
