"""nodepool-sync: a FunctionGraph function that forwards CCE node pool syncs. Entry point: `handler.index`."""

__version__ = "0.1.0"
__all__ = ["__version__"]
