"""Compression actions behind one interface: filter and channel pruning, Tucker, SVD and
(flagged) unstructured magnitude pruning; the registry is `edgetune.catalog.COMPRESSION_METHODS`."""

from edgetune.catalog import COMPRESSION_METHODS as METHODS
from edgetune.compress.base import (
    CompressionContext,
    CompressionError,
    CompressionMethod,
    CompressionRecord,
    PrunerOptions,
    get_method,
)
from edgetune.compress.structure import describe_structure, rebuild_structure
from edgetune.config.recipe import resolve_class

__all__ = ["METHODS", "CompressionContext", "CompressionError", "CompressionMethod", "CompressionRecord",
           "PrunerOptions", "describe_structure", "get_method", "rebuild_structure", "resolve_class"]
