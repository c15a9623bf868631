"""One error root for the toolkit, one base per subsystem, one exit code each.

Each class says what went wrong, not how to exit: the CLI catches every exception in
one place (``cli.main``) and :func:`mlops_actions.cli.exit_code_for` maps the class to
the documented exit code (as pre-commit's ``error_handler.py``); nothing else in the
package calls ``sys.exit`` or picks an exit code for an error. Code that must tell errors
apart tests their class (``isinstance(exc, NotFoundError)``), never their message text.

Exit codes
----------
0  ok (``plan``: no change)
1  a check failed: validation, policy, analysis rolled back, drift found
   (``plan``: there are changes; ``conclude``: the A/B test has no winner)
2  bad input or usage: malformed YAML, unknown keys, bad semver, wrong flags
3  an outside system failed: MLflow, the gateway, GitHub, Kubernetes, a database
4  internal error (a bug; ``cli.EXIT_INTERNAL``)
5  no data: ``monitor`` found no prediction of a pinned model in the window, so
   nothing was checked (is the gateway logging to this store? is the model served?)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_EXTERNAL = 3
EXIT_NO_DATA = 5

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CHECK_FAILED",
    "EXIT_EXTERNAL",
    "EXIT_NO_DATA",
    "EXIT_OK",
    "BadInputError",
    "CheckFailed",
    "ConfigError",
    "ExternalError",
    "GitHubError",
    "Location",
    "MlopsActionsError",
    "MonitoringError",
    "NotFoundError",
    "RegistryError",
    "RegistryInputError",
    "RegistryNotFound",
    "TargetError",
    "ValidationError",
    "scrub_credentials",
]

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*):(?P<password>[^@\s/]+)@")


def scrub_credentials(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``
    (``http://user:s3cret@host`` -> ``http://user:***@host``): outside systems echo the URL
    they were given in their errors (MLflow's "API request to http://user:pass@..."), and a
    message must never print a secret."""
    return _URL_PASSWORD.sub(r"\g<head>:***@", text)


@dataclass(frozen=True)
class Location:
    """Where in a file a problem is: 1-based line and column, as editors count."""

    path: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.path
        if self.column is None:
            return f"{self.path}:{self.line}"
        return f"{self.path}:{self.line}:{self.column}"


class MlopsActionsError(Exception):
    """Root of every error the toolkit raises on purpose (unclassified ones: bad input)."""

    def __init__(self, message: str, *, hint: str | None = None,
                 location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(MlopsActionsError):
    """A model.yaml or environments/*.yaml file (or a flag) is malformed.

    ``errors`` holds every problem found, so a user fixes them all in one go.
    """

    def __init__(self, message: str, *, hint: str | None = None,
                 location: Location | None = None,
                 errors: list[ConfigError] | None = None) -> None:
        super().__init__(message, hint=hint, location=location)
        self.errors: list[ConfigError] = errors if errors is not None else [self]

    def __str__(self) -> str:
        if len(self.errors) > 1 or (self.errors and self.errors[0] is not self):
            return "\n".join(MlopsActionsError.__str__(e) for e in self.errors)
        return super().__str__()


class ValidationError(MlopsActionsError):
    """Input to an evaluation is unusable (missing label column, empty test set...)."""


class CheckFailed(MlopsActionsError):
    """A check ran and said no: thresholds, policy, analysis, drift."""


class ExternalError(MlopsActionsError):
    """An outside system failed or could not be reached."""


class BadInputError(MlopsActionsError):
    """The caller's input is wrong, whichever subsystem noticed it (a pin to a version that
    does not exist, an invalid name or URI): mixed into a subsystem's error class so the
    error is both (``RegistryNotFound`` is a ``RegistryError`` and the user's mistake)."""


class NotFoundError(BadInputError):
    """Something the input names does not exist (a model, a version, an alias)."""


class RegistryError(ExternalError):
    """MLflow (or another registry) failed, or a version/alias does not exist."""


class RegistryInputError(RegistryError, BadInputError):
    """The registry refused the caller's input (a reused semver, an invalid name, alias or
    URI): the user's mistake, not MLflow's (exit 2)."""


class RegistryNotFound(RegistryInputError, NotFoundError):
    """A model, version or alias does not exist: the user's pin or argument is wrong (exit 2)."""


class TargetError(ExternalError):
    """A deployment target (gateway, Kubernetes) failed."""


class GitHubError(ExternalError):
    """The GitHub API failed. ``status``: the HTTP status of GitHub's final answer (None when
    there was none: a lost connection, bad input); ``answer``: that answer as one line,
    ``HTTP 404: Not Found``, for messages that quote it."""

    def __init__(self, message: str, *, hint: str | None = None, location: Location | None = None,
                 status: int | None = None, answer: str | None = None) -> None:
        super().__init__(message, hint=hint, location=location)
        self.status = status
        self.answer = answer


class MonitoringError(ExternalError):
    """The prediction store or an alert sink failed."""
