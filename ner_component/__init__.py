"""WikiANN named-entity recognition with spaCy and transformers.

Everything the project's scripts do lives here, so that tests call it directly.
Importing the package is cheap: submodules load spaCy, datasets or torch only
when they are used.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ner-component")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
