"""A peer tool in a venv of its own (``benchmarks/.venv-<name>``), created on first use, then cached.

Peers pin versions our environment cannot hold (Evidently and gbstats want numpy<2), so each
runs in its own interpreter and the benchmark calls it in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def ensure_peer_venv(name: str, module: str, pins: list[str]) -> Path:
    """The python of ``benchmarks/.venv-<name>``, where ``import module`` works."""
    venv = HERE / f".venv-{name}"
    py = venv / "bin" / "python"
    if py.exists():
        probe = subprocess.run([str(py), "-c", f"import {module}"], capture_output=True)
        if probe.returncode == 0:
            return py
    base = Path(sys.base_prefix) / "bin" / "python3"
    print(f"creating {venv} with {' '.join(pins)} (once; cached afterwards)", flush=True)
    subprocess.run([str(base), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *pins], check=True)
    return py
