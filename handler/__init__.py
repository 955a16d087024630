"""nodepool-sync: a FunctionGraph function that keeps CCE node pools in sync with their templates (single syncs,
fleets, reconcile passes, change events, status). Entry point: `handler.index`."""

__version__ = "0.11.0"
__all__ = ["__version__"]
