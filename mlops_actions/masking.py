"""Secrets found at run time, announced to whoever hides them.

GitHub masks the secrets it passes to a job, not a token this process reads from a file.
An adapter that reads one calls :func:`found`; the CLI edge decides what hiding means
(``cli.main`` registers ``::add-mask::`` inside GitHub Actions). With no sink registered
(a library user calling ``apply`` from Python) nothing happens, and nothing is printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["found", "sink"]

_sinks: list[Callable[[str], None]] = []


def found(secret: str) -> None:
    """``secret`` was read at run time: hide it wherever this process's output goes."""
    if secret:
        for hide in list(_sinks):
            hide(secret)


@contextmanager
def sink(hide: Callable[[str], None]) -> Iterator[None]:
    """Call ``hide`` with every secret :func:`found` while the block runs."""
    _sinks.append(hide)
    try:
        yield
    finally:
        _sinks.remove(hide)
