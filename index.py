"""FunctionGraph entry point at the root of the code zip: handler `index.handler`, initializer `index.initializer`."""

from handler.index import handler, initializer

__all__ = ["handler", "initializer"]
