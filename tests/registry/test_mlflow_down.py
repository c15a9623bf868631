"""An MLflow that is down or slow: one clear RegistryError naming the URI, in bounded time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from mlops_actions.cli import exit_code_for
from mlops_actions.errors import EXIT_EXTERNAL, RegistryError
from mlops_actions.registry.mlflow_registry import HTTP_DEFAULTS, get_registry, redact
from tests.conftest import free_port

BOUND_SECONDS = 30.0  # 3 attempts x 8 s timeout + backoff, measured ~26 s on a loaded 2-core box


@pytest.fixture
def default_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toolkit's own bounds, whatever the developer's shell has set."""
    for key in HTTP_DEFAULTS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts TCP connections and never answers (a hung MLflow)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)  # keep it open, read nothing back
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    listener.close()


def test_unreachable_port_fails_fast_with_one_clear_line(default_waits: None) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    registry = get_registry(uri)
    started = time.monotonic()
    with pytest.raises(RegistryError) as err:
        registry.aliases("breast_cancer")
    elapsed = time.monotonic() - started
    assert elapsed < BOUND_SECONDS
    assert exit_code_for(err.value) == EXIT_EXTERNAL
    message = str(err.value)
    assert message.startswith(f"cannot reach MLflow at {uri} while reading registered model 'breast_cancer'")
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" in message and "Traceback" not in message
    assert len(err.value.message.splitlines()) == 1


@pytest.mark.slow
def test_server_that_never_answers_is_bounded(default_waits: None, silent_server: str) -> None:
    registry = get_registry(silent_server)
    started = time.monotonic()
    with pytest.raises(RegistryError) as err:
        registry.list_versions("wine")
    elapsed = time.monotonic() - started
    print(f"hung server: RegistryError after {elapsed:.1f} s")
    assert elapsed < BOUND_SECONDS
    assert exit_code_for(err.value) == EXIT_EXTERNAL
    assert f"MLflow at {silent_server}" in str(err.value)


def test_user_bounds_win_over_the_defaults(monkeypatch: pytest.MonkeyPatch, silent_server: str) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    registry = get_registry(silent_server)
    started = time.monotonic()
    with pytest.raises(RegistryError, match="cannot reach MLflow"):
        registry.get("wine", "1.0.0")
    assert time.monotonic() - started < 10


def test_cli_prints_one_error_and_exits_3(default_waits: None, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_actions.cli import main

    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["versions", "wine"]) == EXIT_EXTERNAL
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach MLflow at {uri}")
    assert "Traceback" not in err


def test_unknown_scheme_names_the_supported_ones() -> None:
    with pytest.raises(RegistryError, match=r"scheme 'ftp' is not one of http, https, sqlite") as err:
        get_registry("ftp://example.org/mlflow")
    assert exit_code_for(err.value) == 2


def test_passwords_are_redacted_from_messages() -> None:
    assert redact("postgresql://bob:s3cret@db:5432/mlflow") == "postgresql://bob:***@db:5432/mlflow"
    assert redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
