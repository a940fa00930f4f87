"""YAML -> validated, frozen pipeline spec, with file:line:column in every error."""

from pipeline.config.loader import load_config
from pipeline.config.model import PipelineSpec

__all__ = ["PipelineSpec", "load_config"]
