"""One module per kind of pass over the blocks.

- :mod:`~pipeline.engine.passes.reduce`: a reduction (global statistics, merged in a tree);
- :mod:`~pipeline.engine.passes.label`: local labels, touching pairs, stitched tables;
- :mod:`~pipeline.engine.passes.filter`: objects decided on (no pass of its own when the
  objects are an earlier labelling's), and pre-flight checks;
- :mod:`~pipeline.engine.passes.match`: instance tiles matched by overlap;
- :mod:`~pipeline.engine.passes.each_block`: the last pass (a function on every block),
  and parallel calls after it.

Each builds its :class:`~pipeline.engine.pass_graph.PassGraph`, computes it and keeps
what it resolved on the engine.
"""
