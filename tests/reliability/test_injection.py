"""Issue 9 item 5: injection payloads in PR titles, branch names, labels, commit messages,
freeze reasons and dispatch inputs never execute, never emit a workflow command, and are
escaped in comments.

Two layers:

* the workflows' own ``run:`` scripts, executed by bash exactly as the runner does
  (``bash --noprofile --norc -eo pipefail``) with every ``env:`` value that comes from an
  untrusted context set to each payload, and the programs they call (``mlops-actions``,
  ``gh``, ``python``) replaced by a recorder: the marker file is never created and the
  payload reaches the program as one intact argument;
* the toolkit itself, run as a workflow step (``GITHUB_ACTIONS=true``, an event payload
  carrying the injections, the loopback fake of GitHub): ``policy`` + ``comment``,
  ``plan``, ``rollback-pr`` (poisoned commit subjects and ``--reason``) and the error paths
  of ``rollback-pr``/``promote`` with a poisoned ``--model``. No stdout or stderr line starts
  a workflow command the toolkit did not mean, ``$GITHUB_OUTPUT`` holds only the command's own
  outputs, and comment and PR bodies hold no raw HTML, link, image or mention from outside.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.github.fakegithub import FakeGitHub
from tests.github.test_github_workflows import ACTION, WORKFLOWS
from tests.reliability.figures import record
from tests.reliability.test_workflows import UNTRUSTED, load, steps_of

ROOT = Path(__file__).resolve().parents[2]
WEBHOOKS = ROOT / "tests" / "assets" / "github" / "webhooks"
TOKEN = "ghs_injectionTOKEN0123456789"
PAYLOADS = [
    "$(touch {marker})", "`touch {marker}`", '"; touch {marker}; echo "', "'; touch {marker}; #",
    "${{{{ github.token }}}}", "x\n::set-output name=pwned::1\n::add-mask::hidden\n::stop-commands::tok",
    "  ::error::injected", "<img src=x onerror=alert(1)><script>alert(1)</script>",
    "[click](javascript:alert(1)) ![t](https://evil.example/t.png) @octo/team",
    "a && touch {marker} || touch {marker}", "-rf --help", "$(IFS=_;c=touch_{marker};$c)",
    "x\r\n::warning::carriage", "${{{{ secrets.MLOPS_GATEWAY_TOKEN }}}}\n::notice::n",
]
OUR_COMMAND = re.compile(r"^::(error|warning|notice)( [^:\n]*)?::")  # what the toolkit prints itself
INJECTED = re.compile(r"^\s*::(set-output|add-mask|stop-commands|set-env|add-path|save-state|error::injected"
                      r"|warning::carriage|notice::n)")
RAW_HTML = re.compile(r"<(img|script|a |iframe)|(?<!\\)\]\(javascript:|!\[t\]\(|(?<![&\w])@octo/team")


def payloads(marker: Path) -> list[str]:
    return [p.format(marker=marker) for p in PAYLOADS]


def _recorder(bin_dir: Path, log: Path, names: list[str]) -> None:
    """Programs that only record their argv (fields split by RS, calls by US: payloads hold newlines)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = bin_dir / name
        record_argv = f"{{ printf '%s\\036' \"${{0##*/}}\" \"$@\"; printf '\\037'; }} >> {log}"
        path.write_text(f"#!/bin/bash\n{record_argv}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _calls(log: Path) -> list[list[str]]:
    return [call.split("\x1e")[:-1] for call in log.read_text().split("\x1f") if call]


def _untrusted_env(data: dict[str, Any], job: dict[str, Any] | None, step: dict[str, Any]) -> dict[str, str]:
    """Every env var a step sees, workflow to step level, with the expression that sets it."""
    merged: dict[str, str] = {}
    for level in (data.get("env") or {}, (job or {}).get("env") or {}, step.get("env") or {}):
        merged.update({str(k): str(v) for k, v in level.items()})
    return merged


def _steps(path: Path) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    data = load(path)
    jobs = data.get("jobs") or {}
    out = []
    for where, step in steps_of(path, data):
        if "run" not in step:
            continue
        job = jobs.get(where.split(".")[1]) if where.startswith("jobs.") else None
        env = _untrusted_env(data, job, step)
        if any(UNTRUSTED.search(expr) and "secrets." not in expr for expr in env.values()):
            out.append((f"{path.name} {where}", step, env))
    return out


def test_workflow_scripts_pass_payloads_as_data(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    log = tmp_path / "calls.jsonl"
    bin_dir = tmp_path / "bin"
    _recorder(bin_dir, log, ["mlops-actions", "gh", "python", "pip"])
    steps = [s for path in [*WORKFLOWS, ACTION] for s in _steps(path)]
    runs = intact = 0
    problems: list[str] = []
    for where, step, env_exprs in steps:
        for payload in payloads(marker):
            values = {name: payload if UNTRUSTED.search(expr) and "secrets." not in expr else "benign"
                      for name, expr in env_exprs.items()}
            output = tmp_path / "github_output"
            output.write_text("")
            env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "RUNNER_TEMP": str(tmp_path),
                   "GITHUB_OUTPUT": str(output), **values}
            log.write_text("")
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                  cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                                  check=False)
            runs += 1
            if marker.exists():
                problems.append(f"{where}: {payload!r} executed")
                marker.unlink()
            for line in (proc.stdout + proc.stderr).splitlines():
                if INJECTED.match(line):
                    problems.append(f"{where}: {payload!r} printed a workflow command: {line!r}")
            calls = _calls(log)
            # passed straight as an argument ("$VAR"), not split into fields on purpose (<<< "$VAR")
            quoted = [name for name in values if values[name] == payload
                      and re.search(rf'(?<!<<< )"\${name}"', step["run"]) and name != "MLOPS_ARGS"]
            if quoted and calls:
                if any(payload in call for call in calls):
                    intact += 1
                elif "\n" not in payload and "\r" not in payload:  # read/mapfile split lines on purpose
                    problems.append(f"{where}: {payload!r} did not reach the program intact: {calls}")
            bad_outputs = [line for line in output.read_text().splitlines()
                           if not line.startswith("exit-code=")]
            if bad_outputs:
                problems.append(f"{where}: {payload!r} wrote step outputs {bad_outputs}")
    record("injection-workflow-scripts", "hostile-input",
           f"workflow scripts: {len(PAYLOADS)} injection payloads x {len(steps)} run: steps fed by untrusted "
           f"values = {runs} bash runs -> 0 executed, 0 workflow commands, {intact} passed intact as one "
           "argument",
           payloads=len(PAYLOADS), steps=len(steps), runs=runs, intact=intact, problems=len(problems))
    assert not problems, "\n".join(problems[:20])
    assert len(steps) >= 8 and intact >= len(steps)


# --------------------------------------------------------------------------- the toolkit as a step

STAGING = 'promotion:\n  required_approvals: 0\nmodels:\n  fraud:\n    version: "1.2.0"\n'
PRODUCTION = ('promotion:\n  from: staging\n  required_approvals: 1\n  freeze:\n'
              '    - start: "2020-01-01T00:00:00Z"\n      end: "2999-01-01T00:00:00Z"\n'
              '      reason: {reason}\n'
              'models:\n  fraud:\n    version: "{version}"\n')


GIT_IDENTITY = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.invalid",
                "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_IDENTITY}).stdout.strip()


def _repo(tmp: Path, poison: list[str]) -> Path:
    """Pins with a history whose commit subjects and freeze reason carry the payloads."""
    repo = tmp / "repo"
    (repo / "environments").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "commit.gpgsign", "false")
    reason = json.dumps(" ".join(poison))  # a double-quoted YAML scalar: \n escapes become newlines
    (repo / "environments" / "staging.yaml").write_text(STAGING)
    for i, version in enumerate(["1.0.0", "1.1.0", "1.2.0"]):
        text = PRODUCTION.format(reason=reason, version=version)
        (repo / "environments" / "production.yaml").write_text(text)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"promote fraud {version} {poison[i % len(poison)]}")
    return repo


def _event(tmp: Path, repo: Path, poison: list[str]) -> Path:
    payload = json.loads((WEBHOOKS / "pull_request.opened.0.json").read_text())
    pr = payload["pull_request"]
    head = _git(repo, "rev-parse", "HEAD")
    pr["base"]["sha"], pr["head"]["sha"] = _git(repo, "rev-parse", "HEAD~1"), head
    pr["title"], pr["body"] = poison[0], "\n".join(poison)
    pr["head"]["ref"] = "feature/$(touch${IFS}pwned)`id`"
    pr["base"]["repo"]["full_name"] = pr["head"]["repo"]["full_name"] = "octo/repo"
    payload["repository"]["full_name"] = "octo/repo"
    pr["user"]["login"] = "alice"
    pr["number"] = payload["number"] = 1
    pr["labels"] = [{"name": p[:50], "id": i} for i, p in enumerate(poison)]
    payload["inputs"] = {"model": poison[5], "reason": poison[7]}
    path = tmp / "event.json"
    path.write_text(json.dumps(payload))
    return path


def test_toolkit_steps_neither_execute_nor_emit_nor_render_payloads(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    poison = payloads(marker)
    repo = _repo(tmp_path, poison)
    event = _event(tmp_path, repo, poison)
    output = tmp_path / "github_output"
    with FakeGitHub() as gh:
        gh.state.comments[1] = []
        gh.state.refs["main"] = _git(repo, "rev-parse", "main")
        gh.state.files[("main", "environments/production.yaml")] = \
            (repo / "environments" / "production.yaml").read_text()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GITHUB_ACTIONS": "true",
               "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event),
               "GITHUB_REPOSITORY": "octo/repo", "GITHUB_API_URL": gh.url,
               "GITHUB_TOKEN": TOKEN, "GITHUB_OUTPUT": str(output),
               "GITHUB_STEP_SUMMARY": str(tmp_path / "sum"),
               "GITHUB_REF_NAME": "main", "MLOPS_ACTIONS_HTTP_BACKOFF": "0.01"}
        env.pop("MLFLOW_TRACKING_URI", None)

        def step(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "mlops_actions", "-C", str(repo), *args],
                                  cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                                  check=False)

        runs = {
            "policy": step("policy", "--no-live", "--markdown", str(tmp_path / "policy.md")),
            "comment": step("comment", "--kind", "policy", "--env", "all", "--body-file",
                            str(tmp_path / "policy.md")),
            "plan": step("plan", "--no-live", "--markdown", str(tmp_path / "plan.md")),
            "rollback-pr": step("rollback-pr", "--model", "fraud", "--env", "production",
                                "--reason", "\n".join(poison), "--base", "main"),
            "rollback-pr bad model": step("rollback-pr", "--model", poison[5], "--env", "production"),
            "promote bad model": step("promote", "--model", poison[5], "--from", "staging",
                                      "--to", "production"),
            "validate bad model": step("validate", poison[6], "--version", "1.0.0"),
        }
        bodies = [c["body"] for c in gh.state.comments[1]] + [p["body"] for p in gh.state.pulls]
    problems: list[str] = []
    emitted = 0
    for name, proc in runs.items():
        if "Traceback" in proc.stderr or proc.returncode == 4:
            problems.append(f"{name}: crashed: {proc.stderr[-800:]}")
        for line in (proc.stdout + proc.stderr).splitlines():
            if line.lstrip().startswith("::"):
                emitted += 1
                if not OUR_COMMAND.match(line) or INJECTED.match(line):
                    problems.append(f"{name}: printed a workflow command it did not mean: {line!r}")
    assert runs["policy"].returncode == 1, runs["policy"].stdout + runs["policy"].stderr  # frozen: fails
    assert runs["rollback-pr"].returncode == 0, runs["rollback-pr"].stderr
    assert runs["rollback-pr bad model"].returncode == 2 and runs["promote bad model"].returncode == 2
    assert len(bodies) == 2, (bodies, runs["comment"].stderr)  # the policy comment and the rollback PR
    for body in bodies:
        problems += [f"raw markup in a body: {body[max(0, m.start() - 80):m.end() + 20]!r}"
                     for m in RAW_HTML.finditer(body)]
    assert "&lt;img src=x" in bodies[0] and "&lt;script&gt;" in bodies[1]  # shown, as text
    for line in output.read_text().splitlines():
        if not re.match(r"^(result|pr-number|pr-url|version|comment-url|changed|environments"
                        r"|environments-json|changes|has-changes|models)=", line):
            problems.append(f"$GITHUB_OUTPUT line not written by the toolkit: {line!r}")
    if marker.exists() or (tmp_path / "pwned").exists():
        problems.append("a payload executed")
    record("injection-toolkit-steps", "hostile-input",
           f"toolkit as a workflow step: {len(PAYLOADS)} payloads in PR title, branch, labels, commit "
           f"subjects, freeze reason and dispatch inputs through {len(runs)} commands -> 0 executed, "
           "0 injected "
           f"workflow commands, {len(bodies)} comment/PR bodies escaped",
           payloads=len(PAYLOADS), commands=len(runs), bodies=len(bodies), own_commands=emitted,
           problems=len(problems))
    assert not problems, "\n".join(problems[:20])


def test_the_guard_and_the_escaping(capsys: Any, monkeypatch: Any) -> None:
    """The two product pieces in isolation: stdout/stderr guard in Actions, Markdown escaping."""
    from mlops_actions.github import actions
    from mlops_actions.report.markdown import inert

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    with actions.command_guard():
        print("model x\n::set-output name=a::b\n   ::add-mask::c")
        actions.annotate("error", "real\n::error::fake", title="t")
        print("::warning::", end="")
        print("tail")
    out = capsys.readouterr().out.splitlines()
    assert out == ["model x", ": :set-output name=a::b", "   : :add-mask::c",
                   "::error title=t::real%0A::error::fake", ": :warning::tail"]
    assert inert("<b>x</b> [a](b) @team `c`\nd") == r"&lt;b&gt;x&lt;/b&gt; \[a\]\(b\) &#64;team \`c\` d"
