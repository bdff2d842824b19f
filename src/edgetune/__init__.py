"""edgetune: search compression settings by latency measured on the target runtime."""

__version__ = "0.1.0"
__all__ = ["__version__"]
