"""``runnerconf validate`` for CI, run as CI runs it: directories, standard input, SARIF, hooks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("runnerconf")

GOOD = "workers:\n  - {name: a, class: 'm:C'}\n"
BAD = "workers:\n  - {name: a, type: command, command: x, restart: sometimes}\n"
MODELINE = "# yaml-language-server: $schema=../schema/topology.schema.json\n"


def runnerconf(*args: str, cwd: Path | None = None, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "runnerconf"]
    proc = subprocess.run(
        [*command, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60, env=env or dict(os.environ)
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A repository layout: topologies by name and by modeline, and YAML that is not ours."""
    files = {
        "deploy/topology.yaml": GOOD,
        "deploy/eu/bot.topology.yml": BAD,
        "deploy/runnerconf.yaml": GOOD,
        "configs/support-bot.yaml": MODELINE + BAD,
        "configs/notes.yaml": "# just a list\n- a\n- b\n",
        ".pre-commit-config.yaml": "repos: []\n",
        ".github/workflows/ci.yml": "on: push\njobs: {}\n",
        "k8s/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\n",
        ".venv/lib/topology.yaml": BAD,  # hidden directories are not searched
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_directory_is_searched_for_topologies_by_name_and_modeline(tree: Path) -> None:
    proc = runnerconf("validate", ".", cwd=tree)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[:-1] == [
        "configs/support-bot.yaml:3:51: error: workers[0].restart: expected no, on-failure or always; got 'sometimes'",
        "deploy/eu/bot.topology.yml:2:51: error: workers[0].restart: expected no, on-failure or always; got 'sometimes'",
    ]
    assert lines[-1] == "4 file(s) checked: 2 error(s), 0 warning(s): failed"


def test_files_and_directories_together_each_checked_once(tree: Path) -> None:
    proc = runnerconf("validate", "deploy/topology.yaml", "deploy", "deploy/./topology.yaml", cwd=tree)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == "3 file(s) checked: 1 error(s), 0 warning(s): failed"


def test_a_pattern_chooses_other_files(tree: Path) -> None:
    proc = runnerconf("validate", "--pattern", r"(^|/)deploy/topology\.yaml$", ".", cwd=tree)
    # The pattern replaces the default names; the modeline still marks a topology.
    assert proc.stdout.splitlines()[-1] == "2 file(s) checked: 1 error(s), 0 warning(s): failed"
    proc = runnerconf("validate", "--pattern", "(", ".", cwd=tree)
    assert proc.returncode == 2 and "bad pattern '('" in proc.stderr


def test_a_directory_without_topologies_is_a_usage_error_not_a_pass(tmp_path: Path) -> None:
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "svc.yaml").write_text("kind: Service\n")
    proc = runnerconf("validate", "k8s", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no topology files in directory 'k8s'" in proc.stderr


def test_only_topologies_skips_other_yaml_named_on_the_command_line(tree: Path) -> None:
    names = [".pre-commit-config.yaml", ".github/workflows/ci.yml", "k8s/deployment.yaml", "deploy/topology.yaml", "configs/support-bot.yaml"]
    proc = runnerconf("validate", "--only-topologies", *names, cwd=tree)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == "2 file(s) checked (3 skipped: not topologies): 1 error(s), 0 warning(s): failed"
    # Without the flag a named file is always checked.
    proc = runnerconf("validate", "k8s/deployment.yaml", cwd=tree)
    assert proc.returncode == 1 and "unknown key 'apiVersion'" in proc.stdout


def test_standard_input(tree: Path) -> None:
    proc = runnerconf("validate", "-", stdin=BAD, cwd=tree)
    assert proc.returncode == 1
    assert proc.stdout.startswith("<stdin>:2:51: error: workers[0].restart")
    proc = runnerconf("validate", "-", "deploy/topology.yaml", stdin=GOOD, cwd=tree)
    assert proc.returncode == 0 and proc.stdout == "2 file(s) checked: 0 error(s), 0 warning(s): ok\n"


def test_sarif_is_a_sarif_2_1_0_log_with_rules_and_locations(tree: Path) -> None:
    (tree / "deploy" / "legacy.topology.yaml").write_text("PipelineRunner: {name: old}\nworkers: []\n")
    proc = runnerconf("validate", "--format", "sarif", "deploy", "configs", cwd=tree)
    assert proc.returncode == 1
    log: dict[str, Any] = json.loads(proc.stdout)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "runnerconf" and driver["version"]
    rules = driver["rules"]
    assert len({r["id"] for r in rules}) == len(rules)
    results = run["results"]
    assert sorted((r["level"], r["ruleId"]) for r in results) == [("error", "bad-choice"), ("error", "bad-choice"), ("warning", "deprecated-key")]
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["message"]["text"]
        (loc,) = r["locations"]
        uri = loc["physicalLocation"]["artifactLocation"]["uri"]
        region = loc["physicalLocation"]["region"]
        assert not uri.startswith("/") and (tree / uri).is_file()  # relative to the repository root
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
    first = next(r for r in results if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "configs/support-bot.yaml")
    assert first["locations"][0]["physicalLocation"]["region"] == {"startLine": 3, "startColumn": 51}
    assert first["message"]["text"] == "workers[0].restart: expected no, on-failure or always; got 'sometimes'"
    # A clean run is a log with no results (and exit 0), not empty output.
    proc = runnerconf("validate", "--format", "sarif", "deploy/topology.yaml", cwd=tree)
    assert proc.returncode == 0 and json.loads(proc.stdout)["runs"][0]["results"] == []


def test_no_interpolate_in_bounded_numbers(tmp_path: Path) -> None:
    # A placeholder stands for a value within the bound: no bound is applied to the text itself
    # (it once made pydantic's `ge` check raise TypeError, a traceback instead of an answer).
    f = tmp_path / "topology.yaml"
    f.write_text(
        "runner: {name: r}\n"
        "bus: {type: redis, max_batch: '${B}', max_buffer: '${B}', max_frame_bytes: '${B}', max_queued: '${B}', max_len: '${B}'}\n"
        "workers:\n"
        "  - {name: p, type: pipeline, processors: ['m:f'], max_queued: '${Q}'}\n"
        "  - name: c\n"
        "    type: command\n"
        "    command: 'true'\n"
        "    restart: always\n"
        "    max_restarts: '${N}'\n"
        "    backoff: {factor: '${F}'}\n"
        "    healthcheck: {tcp: '127.0.0.1:1', retries: '${R}'}\n"
    )
    for cache in ("", str(tmp_path / "cache"), str(tmp_path / "cache")):  # models; then cold and warm
        proc = runnerconf("validate", "--no-interpolate", "--strict", str(f), env={**os.environ, "RUNNERCONF_CACHE_DIR": cache})
        assert (proc.returncode, proc.stderr) == (0, ""), proc.stdout + proc.stderr
        assert proc.stdout.strip() == "1 file(s) checked: 0 error(s), 0 warning(s): ok"
    f.write_text(f.read_text().replace("max_restarts: '${N}'", "max_restarts: -1"))
    proc = runnerconf("validate", "--no-interpolate", str(f))
    assert proc.returncode == 1 and "workers[1].max_restarts: expected a number of at least 0; got -1" in proc.stdout


def test_github_annotations_from_a_directory(tree: Path) -> None:
    proc = runnerconf("validate", "--format", "github", "configs", cwd=tree)
    assert proc.stdout.splitlines()[0] == (
        "::error file=configs/support-bot.yaml,line=3,col=51,title=runnerconf bad-choice::"
        "workers[0].restart: expected no, on-failure or always; got 'sometimes'"
    )


def test_no_interpolate_for_validate_graph_and_config(tmp_path: Path) -> None:
    f = tmp_path / "topology.yaml"
    f.write_text(
        "runner: {name: '${BOT:?set BOT}', stop_timeout: '${GRACE}'}\n"
        "bus: {type: redis, url: '${REDIS_URL:?the bus needs it}'}\n"
        "workers:\n"
        "  - {name: a, class: 'm:C', params: {api_key: '${OPENAI_API_KEY:?}'}}\n"
        "  - {name: b, class: 'm:C', parent: '${PARENT}'}\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("BOT", "GRACE", "REDIS_URL", "OPENAI_API_KEY", "PARENT")}
    assert runnerconf("validate", str(f), env=env).returncode == 1
    proc = runnerconf("validate", "--no-interpolate", "--strict", str(f), env=env)
    assert proc.returncode == 0, proc.stdout
    proc = runnerconf("graph", "--no-interpolate", str(f), env=env)
    assert proc.returncode == 0 and "a" in proc.stdout
    proc = runnerconf("config", "--no-interpolate", str(f), env=env)
    assert proc.returncode == 0 and "url: ${REDIS_URL:?the bus needs it}" in proc.stdout and "Warning" not in proc.stderr
    # With the variables set, config shows values but never the secrets.
    proc = runnerconf(
        "config", str(f), env={**env, "BOT": "bot", "GRACE": "3s", "REDIS_URL": "redis://u:hunter2@h/0", "OPENAI_API_KEY": "sk-live-123", "PARENT": "a"}
    )
    assert proc.returncode == 0
    assert "hunter2" not in proc.stdout and "sk-live-123" not in proc.stdout
    assert "api_key: '***'" in proc.stdout and "stop_timeout: 3.0" in proc.stdout


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


def _snapshot_of_this_checkout(dest: Path) -> Path:
    """This working tree as one commit of a new repository (what git tracks, and new files it does
    not ignore): pre-commit installs the hooks from it as from a tagged release."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "snapshot")
    return dest


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="pre-commit needs git and a checkout")
def test_the_shipped_hooks_with_real_pre_commit_try_repo(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Both hooks from .pre-commit-hooks.yaml, installed by pre-commit from this repository."""
    repo = tree
    # What the hooks should find: secrets are not set, and `${VAR:?}` must not fail.
    (repo / "deploy" / "topology.yaml").write_text(
        "bus: {type: redis, url: '${REDIS_URL:?secret}'}\nrunner: {stop_timeout: '${GRACE:?}'}\n" + GOOD
    )
    shutil.rmtree(repo / ".venv")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "GRACE")}
    env["PRE_COMMIT_HOME"] = str(tmp_path_factory.mktemp("pre-commit-home"))
    env["PRE_COMMIT_COLOR"] = "never"
    hooks_repo = _snapshot_of_this_checkout(tmp_path_factory.mktemp("runnerconf-repo"))

    def run(*hook: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pre_commit", "try-repo", str(hooks_repo), *hook, "--all-files"]
        return subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=600, env=env)

    by_name = run("runnerconf-validate")
    assert by_name.returncode == 1, by_name.stdout + by_name.stderr
    out = by_name.stdout
    assert "deploy/eu/bot.topology.yml:2:51: error: workers[0].restart" in out
    assert "configs/support-bot.yaml" not in out  # not named as a topology: the modeline hook's
    for other in (".pre-commit-config.yaml", "ci.yml", "deployment.yaml", "notes.yaml"):
        assert other not in out
    assert "deploy/topology.yaml" not in out  # unset secrets do not fail under --no-interpolate

    by_modeline = run("runnerconf-validate-modeline")
    assert by_modeline.returncode == 1
    out = by_modeline.stdout
    assert "configs/support-bot.yaml:3:51: error: workers[0].restart" in out
    assert "deploy/eu/bot.topology.yml:2:51: error: workers[0].restart" in out
    for other in (".pre-commit-config.yaml", "ci.yml", "deployment.yaml", "notes.yaml"):
        assert f"{other}:" not in out

    # Mended, both pass.
    (repo / "deploy" / "eu" / "bot.topology.yml").write_text(GOOD)
    (repo / "configs" / "support-bot.yaml").write_text(MODELINE + GOOD)
    _git(repo, "add", "-A")
    both = run()
    assert both.returncode == 0, both.stdout
    assert both.stdout.count("Passed") == 2


def test_imports_under_no_interpolate_say_what_they_could_not_check(tmp_path: Path) -> None:
    f = tmp_path / "topology.yaml"
    f.write_text(
        "workers:\n"
        "  - {name: a, class: '${MOD}:Worker'}\n"
        "  - {name: p, type: pipeline, processors: ['${MOD}:f']}\n"
        "  - {name: c, type: command, command: ['${BIN}', --port, '${PORT:?}']}\n"
    )
    proc = runnerconf("validate", "--no-interpolate", "--imports", str(f), cwd=tmp_path)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert [line.split(": ")[1:3] for line in lines[:-1]] == [
        ["warning", "workers[0].class"],
        ["warning", "workers[1].processors[0]"],
        ["warning", "workers[2].command"],
    ]
    assert all("not checked: the value holds a variable (--no-interpolate)" in line for line in lines[:-1])
    assert runnerconf("validate", "--no-interpolate", "--imports", "--strict", str(f), cwd=tmp_path).returncode == 1
