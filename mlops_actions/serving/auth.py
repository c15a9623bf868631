"""The admin token: from the environment, or generated once and kept 0600 in ``.mlops/``."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from mlops_actions.deploy.targets.interface import ENVIRONMENT_HEADER, WRONG_ENVIRONMENT

__all__ = ["ENVIRONMENT_HEADER", "TOKEN_ENV", "WRONG_ENVIRONMENT", "check_bearer", "load_or_create_token"]

TOKEN_ENV = "MLOPS_GATEWAY_TOKEN"  # noqa: S105 - the variable name, not a secret


def load_or_create_token(state_dir: Path, env_var: str = TOKEN_ENV) -> str:
    """``$MLOPS_GATEWAY_TOKEN`` when set, else ``state_dir/gateway.token`` (created 0600 if missing).

    Not masked here: the caller at the CLI edge (``commands/serve.py``) masks it in the job's
    log inside GitHub Actions (GitHub masks the secrets it passes in, but not a token this
    process generated or read from a file)."""
    token = os.environ.get(env_var, "").strip()
    if not token:
        path = state_dir / "gateway.token"
        if path.exists():
            token = path.read_text(encoding="utf-8").strip()
        else:
            state_dir.mkdir(parents=True, exist_ok=True)
            token = secrets.token_urlsafe(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(token + "\n")
    return token


def check_bearer(authorization: str | None, token: str) -> bool:
    """Constant-time comparison of ``Authorization: Bearer <token>``."""
    if not authorization or not authorization.startswith("Bearer "):
        return False
    return hmac.compare_digest(authorization[len("Bearer "):].strip().encode(), token.encode())
