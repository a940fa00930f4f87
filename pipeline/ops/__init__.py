"""Pure numpy operations over one block, and the registry that describes them."""

from pipeline.ops.registry import OPS, OpInfo, get_op

__all__ = ["OPS", "OpInfo", "get_op"]
