"""GhostRoll: camera card in, private share link out."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """`__version__`, read from the installed package's metadata only when asked:
    importing importlib.metadata costs ~25 ms that every process start (a card worker
    per insertion, the upload child) would otherwise pay."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ghostroll")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+source"
