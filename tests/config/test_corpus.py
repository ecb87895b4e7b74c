"""check-jsonschema and ``runnerconf validate`` give every file of ``tests/corpus`` one meaning.

``tests/corpus/valid`` holds files both must accept and ``tests/corpus/invalid`` files both must
reject, except the few listed in :data:`SCHEMA_CANNOT_EXPRESS`: checks a JSON Schema has no way
to make, which only runnerconf does. Each invalid file says in its first line where runnerconf
must report its one mistake (``# expect: workers[0].restart``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"
SCHEMA = ROOT / "schema" / "topology.schema.json"
VALID = sorted((CORPUS / "valid").glob("*.yaml"))
INVALID = sorted((CORPUS / "invalid").glob("*.yaml"))

#: The variables the corpus is checked with; nothing else from this process's environment.
ENV = {"BOT_NAME": "bot", "AUTO_END": "false", "AUTO_END_BAD": "maybe"}

_CYCLE = "a cycle needs a walk over the graph of names; JSON Schema checks each value on its own"
#: Invalid files the schema accepts, each with the reason it cannot refuse them.
SCHEMA_CANNOT_EXPRESS = {
    "duplicate-names.yaml": "unique names: `uniqueItems` compares whole workers, not one key of each",
    "unknown-send-to.yaml": "a reference to another worker: a schema cannot look up values elsewhere in the document",
    "self-parent.yaml": "comparing a value with its sibling `name` (`$data` is not part of draft 2020-12)",
    "parent-cycle.yaml": _CYCLE,
    "depends-on-cycle.yaml": _CYCLE,
    "send-to-cycle.yaml": _CYCLE,
    "missing-variable.yaml": "whether a variable is set is a fact of the environment, not of the file",
    "required-variable.yaml": "whether a variable is set is a fact of the environment, not of the file",
    "variable-bad-value.yaml": "the value of a variable is known only once it is substituted",
    "nan-duration.yaml": "YAML's .nan has no JSON counterpart and passes every numeric keyword (comparisons with NaN are false)",
}


def _clean_env(**extra: str) -> dict[str, str]:
    # RUNNERCONF_CACHE_DIR: the session's cache directory (conftest), never the user's.
    kept = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "SYSTEMROOT", "RUNNERCONF_CACHE_DIR")
    keep = {k: v for k, v in os.environ.items() if k in kept}
    return {**keep, **extra}


def check_jsonschema(files: list[Path]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA), "-o", "json", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(),
    )
    assert proc.returncode in (0, 1), proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def runnerconf_validate(files: list[Path], *args: str, env: dict[str, str] | None = None) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "runnerconf", "validate", "--format", "json", *args, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(**(ENV if env is None else env)),
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def verdicts() -> dict[str, tuple[bool, bool]]:
    """For each corpus file: (the schema accepts it, runnerconf accepts it)."""
    files = VALID + INVALID
    schema = check_jsonschema(files)
    rejected_by_schema = {e["filename"] for e in schema.get("errors", [])} | {e["filename"] for e in schema.get("parse_errors", [])}
    _, problems = runnerconf_validate(files)
    rejected_by_runnerconf = {p["file"] for p in problems if p["severity"] == "error"}
    return {str(f): (str(f) not in rejected_by_schema, str(f) not in rejected_by_runnerconf) for f in files}


def test_the_corpus_is_large_and_both_halves_are_there() -> None:
    assert len(VALID) >= 30 and len(INVALID) >= 50
    assert set(SCHEMA_CANNOT_EXPRESS) <= {p.name for p in INVALID}


def test_both_accept_every_valid_file(verdicts: dict[str, tuple[bool, bool]]) -> None:
    wrong = {Path(f).name: v for f, v in verdicts.items() if f.startswith(str(CORPUS / "valid")) and v != (True, True)}
    assert wrong == {}, "(schema accepts, runnerconf accepts)"


def test_both_reject_every_invalid_file_but_the_listed_ones(verdicts: dict[str, tuple[bool, bool]]) -> None:
    disagreements = {}
    for f, (schema_ok, runnerconf_ok) in verdicts.items():
        if not f.startswith(str(CORPUS / "invalid")):
            continue
        assert not runnerconf_ok, f"runnerconf accepts {f}"
        if schema_ok:
            disagreements[Path(f).name] = "the schema accepts it"
    # Exactly the listed files: a listed file the schema now rejects is taken off the list.
    assert sorted(disagreements) == sorted(SCHEMA_CANNOT_EXPRESS)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_runnerconf_reports_one_error_where_the_mistake_is(path: Path) -> None:
    first = path.read_text().splitlines()[:1]
    expected = first[0].removeprefix("# expect:").strip() if first and first[0].startswith("# expect:") else ""
    code, problems = runnerconf_validate([path])
    errors = [p for p in problems if p["severity"] == "error"]
    assert code == 1
    assert [p["path"] for p in errors] == [expected], errors
    message = errors[0]["message"]
    assert "Input should" not in message and "validation error" not in message, message


def test_no_interpolate_needs_no_variable(tmp_path: Path) -> None:
    variable_files = [CORPUS / "invalid" / n for n in ("missing-variable.yaml", "required-variable.yaml", "variable-bad-value.yaml")]
    code, problems = runnerconf_validate([*VALID, *variable_files], "--no-interpolate", env={})
    assert code == 0 and [p for p in problems if p["severity"] == "error"] == []
    # Structure is still checked: a wrong type next to a placeholder is an error.
    f = tmp_path / "t.yaml"
    f.write_text("runner: {name: '${NAME:?required}', stop_timeout: soon}\n")
    code, problems = runnerconf_validate([f], "--no-interpolate", env={})
    assert code == 1 and [p["path"] for p in problems] == ["runner.stop_timeout"]


#: What check-jsonschema says about a mistake: the real one, in the branch the file meant.
BEST_MATCHES = {
    "restart-maybe.yaml": ("$.workers[0].restart", "'maybe' is not one of ['no', 'on-failure', 'always']"),
    "bad-condition.yaml": ("$.workers[0].depends_on[0].condition", "'up' is not one of ['ready', 'healthy', 'completed']"),
    "bad-regex.yaml": ("$.workers[0].ready_line", "'(' is not a 'regex'"),
    "yes-is-not-true.yaml": ("$.runner.handle_sigterm", "'yes' is not of type 'boolean'"),
    "quoted-number.yaml": ("$.bus.max_queued", "'5' is not of type 'integer'"),
    "version-2.yaml": ("$.version", "1 was expected"),
    "sexagesimal.yaml": ("$.runner.stop_timeout", "'1:30' does not match"),
    "bad-http-address.yaml": ("$.runner.http", "'nohost' does not match"),
    "unknown-type.yaml": ("$.workers[0].type", "'pipelin' is not one of ['command', 'pipecat_pipeline', 'pipeline']"),
    "pipeline-no-processors.yaml": ("$.workers[0]", "'processors' is a required property"),
    # Unknown keys: x-* keys are allowed everywhere (for anchors), so the tools say the key is
    # not one of the properties and does not match ^x-.
    "backoff-typo.yaml": ("$.workers[0].backoff", "'inital' does not match any of the regexes: '^x-'"),
    "redis-typo.yaml": ("$.bus", "'chanel' does not match any of the regexes: '^x-'"),
    "zero-interval.yaml": ("$.workers[0].healthcheck.interval", "'0s' does not match"),
    "command-empty.yaml": ("$.workers[0].command", "[] should be non-empty"),
    "env-null.yaml": ("$.workers[0].env.A", "None is not of type"),
    "runner-without-name.yaml": ("$.runners[0]", "'name' is a required property"),
}
#: The misleading forms: a union's least fitting member, or every branch's keys.
MISLEADING = ("is not of type 'null'", "is not valid under any of the given schemas", "'type' were unexpected", "'restart'")


def test_check_jsonschema_reports_the_real_mistake() -> None:
    files = [CORPUS / "invalid" / name for name in BEST_MATCHES]
    result = check_jsonschema(files)
    by_file: dict[str, list[tuple[str, str]]] = {}
    for e in result["errors"]:
        # What a user reads: the error, or for a union the best match check-jsonschema picks.
        best = e.get("best_match") or e
        by_file.setdefault(Path(e["filename"]).name, []).append((best["path"], best["message"]))
    for name, (where, text) in BEST_MATCHES.items():
        messages = by_file.get(name, [])
        assert any(p == where and text in m for p, m in messages), (name, messages)
        assert not any(bad in m for _, m in messages for bad in MISLEADING), (name, messages)
