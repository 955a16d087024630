"""FunctionGraph entry point at the root of the code zip: handler `index.handler`, initializer `index.initializer`."""

import requests  # noqa: F401 - first, at the top of the import chain: imported 8 modules deep it costs ~6 ms more

from handler.index import handler, initializer

__all__ = ["handler", "initializer"]
