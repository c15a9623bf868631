"""Issue 9 item 5: the config loader under hostile input.

A hypothesis test throws YAML built to hurt (nesting far past the cap, scalars around and
over the 1 MiB cap, tags including ``!!python/object``, anchor/alias bombs and merge keys,
odd Unicode, binary and other encodings, mutated valid files) at the loader's file entry
points, as a model.yaml and as an environment file: the only exception allowed is the
project's ``ConfigError``, every error names ``file:line:col``, and no tag executes anything.
An atheris harness (``fuzz/fuzz_config.py``) does the same with coverage-guided mutation for
a bounded number of runs in a subprocess. A few hostile files also go through the CLI: exit
2, one located error per problem, no traceback.
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_actions.config.yamlsafe import MAX_BYTES, MAX_DEPTH
from tests.reliability.figures import record
from tests.reliability.fuzz.config_oracle import check

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "tests" / "assets" / "config"
VALID_FILES = sorted([*(ASSETS / "valid" / "models").glob("*/model.yaml"),
                      *(ASSETS / "valid" / "environments").glob("*.yaml")])
VALID = [p.read_bytes() for p in VALID_FILES]
HARNESS = Path(__file__).parent / "fuzz" / "fuzz_config.py"
MARKER_CMD = "touch {marker}"
TRIED: Counter[str] = Counter()

HOSTILE_CHARS = ["\u202e", "\u200b", "\u2028", "\u2029", "\u0085", "\ufeff", "\u00a0", "\x00", "\x1b",
                 "\x7f", "\ud800", "\U0001f600", "\u0301", "\uffff", "\x0b", "\x0c", "\r", "\u3000"]
TAGS = ["!!python/object/apply:os.system [{cmd!r}]", "!!python/name:os.system", "!!binary aGVsbG8=",
        "!!set {{a, b}}", "!!omap [a: 1]", "!!timestamp 2024-01-01", "!local x", "!<tag:x,2000:y> z",
        "!!str", "!!int 1", "!!float x", "!!map {{}}", "!!seq []", "!!null ~", "!!bool yes"]


def _lines_with(data: bytes, insert: bytes, at: int) -> bytes:
    lines = data.splitlines(keepends=True) or [b""]
    i = at % len(lines)
    return b"".join([*lines[:i], insert, *lines[i:]])


@st.composite
def deep_nesting(draw: st.DrawFn) -> tuple[str, bytes]:
    depth = draw(st.sampled_from([MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 500, 5000, 50_000]))
    style = draw(st.sampled_from(["flow_seq", "flow_map", "block_map", "block_seq", "mixed"]))
    if style == "flow_seq":
        text = "[" * depth + "]" * draw(st.sampled_from([depth, 0, depth // 2]))
    elif style == "flow_map":
        text = "{a: " * depth + "1" + "}" * depth
    elif style == "block_map":
        text = "".join(f"{' ' * i}k{i}:\n" for i in range(min(depth, 3000))) + " " * depth + "v\n"
    elif style == "block_seq":
        text = "".join(f"{' ' * (2 * i)}- \n" for i in range(min(depth, 2000)))
    else:
        text = "name: x\nmodels:\n  m: " + "[{a: " * depth
    return "deep-nesting", text.encode()


@st.composite
def huge_scalar(draw: st.DrawFn) -> tuple[str, bytes]:
    size = draw(st.sampled_from([MAX_BYTES - 64, MAX_BYTES - 1, MAX_BYTES, MAX_BYTES + 1, 3 * MAX_BYTES]))
    kind = draw(st.sampled_from(["plain", "quoted", "block", "key", "number"]))
    head = {"plain": b"name: ", "quoted": b'name: "', "block": b"name: |\n  ", "key": b"",
            "number": b"weight: "}[kind]
    fill = b"9" if kind == "number" else b"x"
    body = head + fill * max(0, size - len(head) - 2) + (b'"' if kind == "quoted" else b"")
    if kind == "key":
        body += b": 1"
    return "huge-scalar", body


@st.composite
def tagged(draw: st.DrawFn, marker: str) -> tuple[str, bytes]:
    tag = draw(st.sampled_from(TAGS)).format(cmd=MARKER_CMD.format(marker=marker))
    base = draw(st.sampled_from(VALID))
    mode = draw(st.sampled_from(["value", "document", "directive"]))
    if mode == "document":
        return "tags", f"--- {tag}\n".encode()
    if mode == "directive":
        return "tags", b"%TAG !e! tag:evil.example,2000:\n--- !e!obj\n" + base
    line = f"evil: {tag}\n".encode()
    return "tags", _lines_with(base, line, draw(st.integers(0, 200)))


@st.composite
def alias_bomb(draw: st.DrawFn) -> tuple[str, bytes]:
    levels = draw(st.integers(2, 12))
    width = draw(st.integers(2, 10))
    lines = ['a0: &a0 "lol"']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"a{i}: &a{i} [{refs}]")
    variant = draw(st.sampled_from(["laughs", "merge", "recursive", "key"]))
    if variant == "merge":
        lines = ["base: &b {name: x, task: regression}", "m:", "  <<: *b", "  extra: 1"]
    elif variant == "recursive":
        lines = ["&r [*r]"]
    elif variant == "key":
        lines = ["? &k [a, b]", ": 1", "*k : 2"]
    return "alias-bomb", ("\n".join(lines) + "\n").encode()


@st.composite
def odd_unicode(draw: st.DrawFn) -> tuple[str, bytes]:
    base = draw(st.sampled_from(VALID)).decode("utf-8")
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(base)))
        base = base[:i] + draw(st.sampled_from(HOSTILE_CHARS)) + base[i:]
    data = base.encode("utf-8", errors="surrogatepass")  # lone surrogates stay as their bytes
    return "odd-unicode", data


@st.composite
def other_encoding(draw: st.DrawFn) -> tuple[str, bytes]:
    base = draw(st.sampled_from(VALID)).decode("utf-8") + "# é ü 名前\n"
    encoding = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252", "utf-7"]))
    bom = draw(st.sampled_from([b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE]))
    return "encodings", bom + base.encode(encoding, errors="replace")


@st.composite
def binary(draw: st.DrawFn) -> tuple[str, bytes]:
    return "binary", draw(st.binary(min_size=0, max_size=4096))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 10))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup_line", "splice", "token"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 16))]
        elif op == "dup_line":
            data = bytearray(_lines_with(bytes(data), bytes(data[i:i + 40]) + b"\n", i))
        elif op == "splice":
            other = draw(st.sampled_from(VALID))
            j = draw(st.integers(0, len(other)))
            data = data[:i] + other[j:]
        else:
            token = draw(st.sampled_from([b"&a ", b"*a", b"<<: ", b"!!str ", b"? ", b"- ", b": ", b"{", b"]",
                                          b"\t", b"---\n", b"%YAML 1.1\n", b"yes", b"0x1F", b"1:20",
                                          b"2024-01-01", b"'", b'"', b"|", b">-"]))
            data[i:i] = token
    return "mutated-valid", bytes(data)


def hostile(marker: str) -> st.SearchStrategy[tuple[str, bytes]]:
    return st.one_of(deep_nesting(), huge_scalar(), tagged(marker), alias_bomb(), odd_unicode(),
                     other_encoding(), binary(), mutated())


@pytest.mark.slow
def test_hostile_yaml_gives_a_spec_or_a_located_config_error(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    target = tmp_path / "hostile.yaml"
    errors = Counter[str]()

    @settings(max_examples=1200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])
    @given(hostile(str(marker)))
    def run(case: tuple[str, bytes]) -> None:
        family, data = case
        TRIED[family] += 1
        errors[family] += check(data, target)
        assert not marker.exists(), f"a {family} input executed code"

    TRIED.clear()
    run()
    total = sum(TRIED.values())
    record("config-fuzz-hypothesis", "hostile-input",
           f"config loader: {total} hostile YAML inputs (hypothesis: {len(TRIED)} families) -> "
           "0 crashes, every error a ConfigError at file:line:col, no tag executed",
           inputs=total, per_family=dict(TRIED), config_errors=sum(errors.values()))
    assert len(TRIED) == 8 and min(TRIED.values()) >= 20, TRIED


def test_the_oracle_accepts_valid_files_and_locates_errors(tmp_path: Path) -> None:
    """The property is not vacuous: valid files load both ways where they should, bad ones are located."""
    target = tmp_path / "x.yaml"
    model = VALID[0]
    env = next(d for p, d in zip(VALID_FILES, VALID, strict=True) if "environments" in str(p))
    assert check(model, target) >= 1  # a model.yaml is not an environment file: located errors
    assert check(env, target) >= 1
    with pytest.raises(AssertionError, match="without file:line:col"):
        from mlops_actions.errors import ConfigError

        def broken(path: Path) -> None:
            raise ConfigError("no location")

        import tests.reliability.fuzz.config_oracle as oracle
        saved = oracle.load_model
        oracle.load_model = broken  # type: ignore[assignment]
        try:
            check(b"x: 1", target)
        finally:
            oracle.load_model = saved


@pytest.mark.slow
def test_atheris_harness_finds_no_crash(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is in the dev extras: pip install -e .[dev]")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in [*VALID_FILES, *sorted((ASSETS / "broken").glob("*.y*ml"))]:
        (corpus / f"{path.parent.name}-{path.name}").write_bytes(path.read_bytes())
    seeds = len(os.listdir(corpus))  # libFuzzer adds what it finds to this directory
    runs = int(os.environ.get("MLOPS_FUZZ_RUNS", "25000"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FUZZ_CONFIG_FILE": str(tmp_path / "input.yaml")}
    proc = subprocess.run(
        [sys.executable, str(HARNESS), f"-runs={runs}", "-max_len=8192", "-max_total_time=90",
         f"-dict={HARNESS.parent / 'yaml.dict'}", f"-artifact_prefix={tmp_path}/", str(corpus)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    log = proc.stdout + proc.stderr
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
    done = re.search(r"Done (\d+) runs in (\d+) second", log)
    coverage = re.findall(r"cov: (\d+)", log)
    assert proc.returncode == 0 and not crashes, f"exit {proc.returncode}, artifacts {crashes}\n{log[-4000:]}"
    assert done is not None, log[-2000:]
    executions = int(done.group(1))
    record("config-fuzz-atheris", "hostile-input",
           f"config loader: atheris ran {executions} coverage-guided inputs ({seeds} seed files, "
           f"{coverage[-1] if coverage else '?'} edges) -> 0 crashes",
           executions=executions, seconds=int(done.group(2)), seeds=seeds, corpus=len(os.listdir(corpus)),
           coverage_edges=int(coverage[-1]) if coverage else None)
    assert executions >= min(runs, 1000)


def test_a_long_integer_is_a_located_error_not_a_crash(tmp_path: Path) -> None:
    """Found by the hypothesis test: int() of more than 4300 digits raised ValueError."""
    target = tmp_path / "x.yaml"
    target.write_bytes(b"name: " + b"9" * 5000 + b"\n")
    from mlops_actions.config.loader import load_model
    from mlops_actions.errors import ConfigError

    with pytest.raises(ConfigError, match=r"x\.yaml:1:7: name: unquoted integer of 5000 digits"):
        load_model(target)


def test_hostile_files_through_the_cli(tmp_path: Path) -> None:
    """What a PR could commit: exit 2, each problem at file:line:col, no traceback, nothing run."""
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(ASSETS / "valid", repo)
    marker = tmp_path / "pwned"
    files = {
        "models/evil/model.yaml":
            f"name: evil\nx: !!python/object/apply:os.system [{MARKER_CMD.format(marker=marker)!r}]\n",
        "models/bomb/model.yaml": 'a: &a ["lol"]\nb: [*a, *a]\n',
        "models/deep/model.yaml": "[" * 10_000 + "]" * 10_000 + "\n",
        "environments/binary.yaml": "\x00\x01\x02",
    }
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    (repo / "environments" / "huge.yaml").write_bytes(b"name: " + b"x" * (MAX_BYTES + 10))
    (repo / "environments" / "utf16.yaml").write_bytes("models: {}\n".encode("utf-16"))
    proc = subprocess.run([sys.executable, "-m", "mlops_actions", "-C", str(repo), "check"],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert not marker.exists()
    for rel in [*files, "environments/huge.yaml", "environments/utf16.yaml"]:
        assert re.search(rf"^error: {re.escape(rel)}:\d+:\d+: ", proc.stderr, re.M), (rel, proc.stderr)
