"""The property both config fuzzers check, in one place (no atheris import, so pytest can use it).

Bytes written to a file and loaded as a model.yaml and as an environment file through the
loader's public entry points end in a spec or in a ``ConfigError`` whose every error names
``file:line:col`` of that file. Any other exception propagates (a crash to the fuzzer).
"""

from __future__ import annotations

from pathlib import Path

from mlops_actions.config.loader import load_environment, load_model
from mlops_actions.errors import ConfigError

__all__ = ["check"]


def check(data: bytes, path: Path) -> int:
    """Load ``data`` both ways; return how many ConfigErrors it produced (0: both loaded)."""
    path.write_bytes(data)
    found = 0
    for load in (load_model, load_environment):
        try:
            load(path)
        except ConfigError as exc:
            for error in exc.errors:
                location = error.location
                if location is None or location.line is None or location.column is None:
                    raise AssertionError(f"ConfigError without file:line:col: {error!r}") from None
                if location.path != str(path):
                    raise AssertionError(f"ConfigError names {location.path}, not {path}") from None
                if not error.message or "Traceback" in str(error):
                    raise AssertionError(f"unhelpful ConfigError: {error!r}") from None
                found += 1
    return found
