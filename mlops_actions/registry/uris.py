"""Which model URIs the toolkit will load, and the one check every entry point calls.

Loading an MLflow model runs code (pickles, cloudpickled pyfunc classes), so a model is
loaded only from the registry: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``,
``models:/m-<logged model id>`` or ``runs:/<run id>/<artifact path>``. Never a path or a
``file:`` URI (that is how a PR's files, or ``/etc/passwd``, would get in), never another
scheme, never ``..``, percent-encoding (``%252e%252e%252f`` is ``../`` after two decodings),
a query or a fragment. The URI enters at ``serve --model-uri``, the gateway's admin API
(``POST /admin/rollouts``), ``register --source`` (URI form) and the gateway's loader, and
each calls :func:`check_model_uri`.

The registry itself can still point outside: a local artifact store whose model
directory holds a symlink to ``/etc``. :func:`check_artifact_tree` refuses a model
directory with a symlink that leaves it; the gateway's loader runs it on the local
directory a URI resolves to before MLflow reads anything.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

from mlops_actions.errors import ConfigError

__all__ = ["ALLOWED_FORMS", "MAX_URI_LENGTH", "check_artifact_tree", "check_model_uri"]

MAX_URI_LENGTH = 1024
ALLOWED_FORMS = ("models:/<name>/<version>", "models:/<name>@<alias>", "models:/m-<logged model id>",
                 "runs:/<run id>/<artifact path>")
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}"
_FORMS = (
    re.compile(rf"models:/{_NAME}/[0-9]{{1,18}}"),
    re.compile(rf"models:/{_NAME}@[A-Za-z0-9][A-Za-z0-9_\-]{{0,255}}"),
    re.compile(r"models:/m-[0-9a-f]{8,64}"),
    re.compile(r"runs:/[0-9a-f]{8,64}/[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*"),
)
_DECODE_ROUNDS = 5


def _refuse(uri: str, reason: str, what: str) -> ConfigError:
    shown = uri if len(uri) <= 200 else uri[:200] + "..."
    return ConfigError(
        f"{what} {shown!r} is refused: {reason}",
        hint=f"models are loaded only from the registry: {', '.join(ALLOWED_FORMS)} "
             "(register a model with `mlops-actions register` first)")


def _decoded(uri: str) -> str:
    """``uri`` percent-decoded until it stops changing (at most a few rounds)."""
    text = uri
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def check_model_uri(uri: str, *, what: str = "model URI") -> str:
    """Return ``uri`` when it is a registry URI the toolkit may load; else raise ConfigError (exit 2)."""
    if not isinstance(uri, str) or not uri:
        raise _refuse(str(uri), "it is empty", what)
    if len(uri) > MAX_URI_LENGTH:
        raise _refuse(uri, f"it is {len(uri)} characters long (the limit is {MAX_URI_LENGTH})", what)
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c in "\u2028\u2029\u0085" for c in uri):
        raise _refuse(uri, "it contains whitespace or control characters", what)
    decoded = _decoded(uri)
    if decoded != uri:
        raise _refuse(uri, f"it is percent-encoded (decoded: {decoded!r})", what)
    if "?" in uri or "#" in uri:
        raise _refuse(uri, "queries and fragments are not allowed", what)
    if "\\" in uri:
        raise _refuse(uri, "backslashes are not allowed", what)
    segments = re.split(r"[/@]", uri.split(":", 1)[-1])
    if any(s in ("..", ".") for s in segments):
        raise _refuse(uri, "`..` and `.` path segments are not allowed", what)
    if uri.startswith(("/", "~", ".")) or re.match(r"^[A-Za-z]:[\\/]", uri):
        raise _refuse(uri, "a local path is not a registry URI (a PR's files are never loaded)", what)
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme not in ("models", "runs"):
        reason = "a local path is not a registry URI (a PR's files are never loaded)" if not scheme \
            else f"scheme {scheme + ':'!r} is not allowed"
        raise _refuse(uri, reason, what)
    if not any(form.fullmatch(uri) for form in _FORMS):
        raise _refuse(uri, "it is not one of the registry forms", what)
    return uri


def check_artifact_tree(root: Path, *, uri: str = "", what: str = "model URI") -> None:
    """Refuse a local model directory holding a symlink that resolves outside it (``model -> /etc``)."""
    base = root.resolve()
    if root.is_symlink():
        raise _refuse(uri or str(root), f"its artifacts at {root} are behind a symlink (to {base})", what)
    for directory, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(directory) / name
            if path.is_symlink():
                target = path.resolve()
                if target != base and base not in target.parents:
                    raise _refuse(uri or str(root), f"{path.relative_to(root)} is a symlink out of the "
                                  f"model's artifacts (to {target})", what)
