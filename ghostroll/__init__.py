"""GhostRoll: camera card in, private share link out."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ghostroll")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
