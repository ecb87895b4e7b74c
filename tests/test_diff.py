"""`runnerconf diff`: the pure diff of two topologies, and the command on files and git revisions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runnerconf.config.diff import diff_topologies
from runnerconf.config.loader import load_topology
from runnerconf.config.revision import make_revision

BASE = """\
runner: {name: bot, stop_timeout: 5s}
workers:
  - name: greeter
    class: runnerconf.examples.hello:Printer
    params: {prefix: "> "}
  - name: child
    class: runnerconf.examples.hello:Printer
    parent: greeter
  - name: steady
    class: runnerconf.examples.hello:Printer
    params: {api_key: old-key-value}
  - name: leaving
    class: runnerconf.examples.hello:Printer
"""


def load(text: str) -> object:
    return load_topology(textwrap.dedent(text), environ={})


def test_the_same_topology_written_differently_is_equal() -> None:
    other = """\
        # comments, another key order, and defaults written out
        workers:
          - {class: "runnerconf.examples.hello:Printer", name: greeter, params: {prefix: "> "}, active: true}
          - {name: child, class: "runnerconf.examples.hello:Printer", parent: greeter}
          - {name: steady, class: "runnerconf.examples.hello:Printer", params: {api_key: old-key-value}}
          - {name: leaving, class: "runnerconf.examples.hello:Printer", required: false}
        runner: {stop_timeout: 5.0, name: bot, handle_sigint: true}
    """
    result = diff_topologies(load(BASE), load(other))  # type: ignore[arg-type]
    assert result.equal and result.old_revision == result.new_revision
    assert result.render() == f"no changes (revision {result.new_revision})\n"


def test_each_change_says_what_applying_it_does() -> None:
    new = BASE.replace('params: {prefix: "> "}', 'params: {prefix: ">> "}').replace("old-key-value", "new-key-value")
    new = new.replace("  - name: leaving\n    class: runnerconf.examples.hello:Printer\n", "")
    new += "  - name: added\n    class: runnerconf.examples.hello:Printer\n    required: true\n"
    new = new.replace("  - name: steady\n", "  - name: steady\n    required: true\n")
    result = diff_topologies(load(BASE), load(new))  # type: ignore[arg-type]
    [runner] = result.runners
    assert runner.name == "bot" and runner.action == "apply"
    actions = {w.name: (w.status, w.action) for w in runner.workers}
    assert actions == {
        "greeter": ("changed", "restart"),
        "child": ("changed", "restart"),  # with its parent
        "steady": ("changed", "restart"),  # a param changed (required alone would be in place)
        "leaving": ("removed", "stop"),
        "added": ("added", "start"),
    }
    text = result.render()
    assert "params.prefix: '> ' -> '>> '" in text and "with its parent greeter" in text
    assert "params.api_key: *** -> ***" in text and "key-value" not in text  # secrets never shown
    assert "key-value" not in json.dumps(result.to_dict())


def test_keys_a_running_worker_takes_change_it_in_place() -> None:
    new = BASE.replace("  - name: steady\n", "  - name: steady\n    required: true\n    depends_on: [greeter]\n")
    [runner] = diff_topologies(load(BASE), load(new)).runners  # type: ignore[arg-type]
    assert [(w.name, w.action, [str(c) for c in w.changes]) for w in runner.workers] == [
        ("steady", "change in place", ["depends_on: [] -> [{\"name\": \"greeter\", \"condition\": \"ready\"}]", "required: false -> true"])
    ]


def test_runner_and_bus_options_need_a_runner_restart() -> None:
    new = BASE.replace("stop_timeout: 5s", "stop_timeout: 30s") + "bus: {type: async_queue, max_queued: 5}\n"
    result = diff_topologies(load(BASE), load(new))  # type: ignore[arg-type]
    [runner] = result.runners
    assert runner.action == "needs a runner restart"
    assert [str(c) for c in runner.changes] == ["stop_timeout: 5.0 -> 30.0"]
    assert [str(c) for c in result.bus] == ["bus.max_queued: 10000 -> 5"]


def test_runners_added_and_removed() -> None:
    old = "runners:\n  - {name: a, workers: [{name: x, class: 'm:C'}]}\n  - {name: b, workers: [{name: y, class: 'm:C'}]}\n"
    new = "runners:\n  - {name: a, workers: [{name: x, class: 'm:C'}]}\n  - {name: c, workers: [{name: z, class: 'm:C'}]}\n"
    result = diff_topologies(load(old), load(new))  # type: ignore[arg-type]
    assert [(r.name, r.status, r.action) for r in result.runners] == [
        ("a", "unchanged", "none"),
        ("b", "removed", "stop runner"),
        ("c", "added", "start runner"),
    ]


def test_the_revision_hides_nothing_it_needs_and_leaves_bus_secrets_out() -> None:
    text = "bus: {type: redis, url: 'redis://:pw-in-url@h:6379/0', secret: a-bus-secret-of-length}\nrunner: {name: r}\nworkers: []\n"
    revision = make_revision(load(text))  # type: ignore[arg-type]
    assert "pw-in-url" not in revision.content and "a-bus-secret-of-length" not in revision.content
    assert revision.verify()
    other = make_revision(load(text.replace("a-bus-secret-of-length", "another-secret-of-length")))  # type: ignore[arg-type]
    assert other.content == revision.content and other.bus != revision.bus and other.id != revision.id


# -- the command -------------------------------------------------------------------------------


def runnerconf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runnerconf", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_command_exits_0_1_2_like_diff(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BASE)
    (tmp_path / "b.yaml").write_text(BASE.replace('"> "', '">> "'))
    (tmp_path / "bad.yaml").write_text("workers: [{name: 1}]\n")
    same = runnerconf("diff", "a.yaml", "a.yaml", cwd=tmp_path)
    assert same.returncode == 0 and same.stdout.startswith("no changes")
    different = runnerconf("diff", "a.yaml", "b.yaml", cwd=tmp_path)
    assert different.returncode == 1
    assert "~ runner bot: apply" in different.stdout and "~ worker greeter: restart" in different.stdout
    as_json = runnerconf("diff", "a.yaml", "b.yaml", "--format", "json", cwd=tmp_path)
    data = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and data["equal"] is False
    assert [w["name"] for w in data["runners"][0]["workers"]] == ["greeter", "child"]
    for args in (["a.yaml", "missing.yaml"], ["a.yaml", "bad.yaml"]):
        result = runnerconf("diff", *args, cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "bad.yaml:1:" in runnerconf("diff", "a.yaml", "bad.yaml", cwd=tmp_path).stderr
    # An overlay applies to both sides.
    (tmp_path / "prod.yaml").write_text("workers:\n  - {name: greeter, params: {prefix: same}}\n")
    assert runnerconf("diff", "a.yaml", "b.yaml", "-f", "prod.yaml", cwd=tmp_path).returncode == 0


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_git_revision_against_the_work_tree(tmp_path: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    repo = tmp_path / "repo"
    (repo / "deploy").mkdir(parents=True)
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, env=env, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (repo / "deploy" / "bot.yaml").write_text(BASE)
    git("add", ".")
    git("commit", "-qm", "first")
    (repo / "deploy" / "bot.yaml").write_text(BASE.replace("stop_timeout: 5s", "stop_timeout: 6s"))
    git("commit", "-qam", "second")
    (repo / "deploy" / "bot.yaml").write_text(BASE.replace("stop_timeout: 5s", "stop_timeout: 7s"))
    result = runnerconf("diff", "git:HEAD~1:deploy/bot.yaml", "deploy/bot.yaml", cwd=repo)
    assert result.returncode == 1 and "stop_timeout: 5.0 -> 7.0" in result.stdout
    result = runnerconf("diff", "git:HEAD:bot.yaml", "bot.yaml", cwd=repo / "deploy")  # paths from the current directory
    assert result.returncode == 1 and "stop_timeout: 6.0 -> 7.0" in result.stdout
    assert runnerconf("diff", "git:HEAD~1:deploy/bot.yaml", "git:HEAD~1:deploy/bot.yaml", cwd=repo).returncode == 0
    result = runnerconf("diff", "git:no-such-rev:deploy/bot.yaml", "deploy/bot.yaml", cwd=repo)
    assert result.returncode == 2 and "no-such-rev" in result.stderr and "Traceback" not in result.stderr
    result = runnerconf("diff", "git:HEAD:deploy/nothing.yaml", "deploy/bot.yaml", cwd=repo)
    assert result.returncode == 2 and "nothing.yaml" in result.stderr
    # A "revision" that git would take for an option is refused, never passed on.
    result = runnerconf("diff", f"git:--output={tmp_path / 'written'}:deploy/bot.yaml", "deploy/bot.yaml", cwd=repo)
    assert result.returncode == 2 and "cannot start with '-'" in result.stderr
    assert not (tmp_path / "written").exists()
