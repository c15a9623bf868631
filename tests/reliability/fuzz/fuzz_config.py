"""atheris harness for the config loader (issue 9 item 5): any bytes, loaded as a model.yaml
and as an environment file through the real file path, end in a spec or in a ``ConfigError``
that names ``file:line:col``. Anything else (another exception, an error without a
location) is a crash for libFuzzer, which then exits non-zero and writes the input.

    python tests/reliability/fuzz/fuzz_config.py -runs=20000 -max_len=4096 CORPUS_DIR

``tests/reliability/test_fuzz_config.py`` runs it for a bounded number of iterations.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["mlops_actions"]):
    import mlops_actions.config.loader  # noqa: F401 - instrumented before the oracle imports it

from tests.reliability.fuzz.config_oracle import check

# Where each input is written: $FUZZ_CONFIG_FILE (the test passes one in its tmp dir), else a temp file.
_FILE = Path(os.environ.get("FUZZ_CONFIG_FILE") or Path(tempfile.mkdtemp(prefix="fuzz-config-")) / "m.yaml")


def one_input(data: bytes) -> None:
    check(data, _FILE)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
