"""Compression actions behind one interface: filter and channel pruning, Tucker, SVD and
(flagged) unstructured magnitude pruning; see `base.METHODS`."""

from edgetune.compress.base import (
    METHODS,
    CompressionContext,
    CompressionError,
    CompressionMethod,
    CompressionRecord,
    PrunerOptions,
    get_method,
    resolve_class,
)
from edgetune.compress.structure import describe_structure, rebuild_structure

__all__ = ["METHODS", "CompressionContext", "CompressionError", "CompressionMethod", "CompressionRecord",
           "PrunerOptions", "describe_structure", "get_method", "rebuild_structure", "resolve_class"]
