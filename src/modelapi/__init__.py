"""modelapi: a scikit-learn model from a CSV to a production prediction API.

The names here are the slim runtime plus thin entry points for notebooks; training code is
imported only when `train` or `save` is called.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("modelapi")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
