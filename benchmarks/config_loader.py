"""Strict loader vs PyYAML on the same documents: small real files and a near-cap (1 MiB) file.

Run from the repository root: PYTHONPATH=. python benchmarks/config_loader.py
Peers: ``yaml.safe_load`` (pure-Python PyYAML, what most tools call) and
``yaml.load(Loader=yaml.CSafeLoader)`` (libyaml). The strict loader also records
every value's position and checks every scalar, so it is expected to trail libyaml.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import yaml

from mlops_actions.config.yamlsafe import parse_yaml

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "tests" / "assets" / "config" / "valid" / "models" / "cancer" / "model.yaml"


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(label: str, text: str, repeat: int) -> None:
    ours = best_of(lambda: parse_yaml(text), repeat)
    pure = best_of(lambda: yaml.safe_load(text), repeat)
    c = best_of(lambda: yaml.load(text, Loader=yaml.CSafeLoader), repeat)
    print(f"{label}: strict {ours * 1e3:.1f} ms | yaml.safe_load {pure * 1e3:.1f} ms "
          f"(strict is {pure / ours:.2f}x as fast) | CSafeLoader {c * 1e3:.1f} ms "
          f"(strict takes {ours / c:.2f}x as long)")


def main() -> None:
    compare(f"{SMALL.name} ({SMALL.stat().st_size} bytes)", SMALL.read_text(), repeat=200)
    big = "validation:\n  slices:\n" + "".join(
        f"    - name: s{i}\n      where: [{{column: c, op: '>', value: {i}}}]\n" for i in range(15000))
    compare(f"near-cap file ({len(big) // 1024} KiB, 15000 slices)", big, repeat=3)


if __name__ == "__main__":
    main()
