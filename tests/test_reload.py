"""Reload in place, `ps` and `apply`, on real `runnerconf up` processes and real files (and a
test-owned redis-server for the runners spread over processes)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RedisServer, require_redis_package
from .helpers import Proc, until

WORKERS = '''\
"""Workers that write their life to a file: "start NAME LABEL ID", "end NAME REASON"."""

import os

from runnerconf.workers.base_worker import BaseWorker


class Keeper(BaseWorker):
    def __init__(self, name=None, *, label="1", log):
        super().__init__(name)
        self.label, self.log = label, log

    def write(self, line):
        with open(self.log, "a") as fh:
            fh.write(line + "\\n")

    async def on_start(self):
        self.write(f"start {self.name} {self.label} {id(self)}")

    async def on_end(self, reason):
        self.write(f"end {self.name} {reason}")
'''


def topology(log: Path, workers: str, runner: str = "{name: bot, auto_end: false, stop_timeout: 5s}") -> str:
    return f"runner: {runner}\nworkers:\n" + textwrap.indent(textwrap.dedent(workers).replace("LOG", str(log)), "  ")


FIRST = """\
- {name: a, class: "keepers:Keeper", params: {log: "LOG"}}
- {name: b, class: "keepers:Keeper", params: {log: "LOG"}}
- {name: c, class: "keepers:Keeper", params: {log: "LOG"}, depends_on: [a]}
- {name: p, class: "keepers:Keeper", params: {log: "LOG"}}
- {name: q, class: "keepers:Keeper", params: {log: "LOG"}, parent: p}
"""

SECOND = """\
- {name: a, class: "keepers:Keeper", params: {log: "LOG"}}
- {name: b, class: "keepers:Keeper", params: {log: "LOG", label: "2"}}
- {name: p, class: "keepers:Keeper", params: {log: "LOG", label: "2"}}
- {name: q, class: "keepers:Keeper", params: {log: "LOG"}, parent: p}
- {name: d, class: "keepers:Keeper", params: {log: "LOG"}, depends_on: [e]}
- {name: e, class: "keepers:Keeper", params: {log: "LOG"}}
"""


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def starts(log: Path, name: str) -> list[str]:
    return [line for line in lines(log) if line.split()[:2] == ["start", name]]


def runnerconf(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runnerconf", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def keepers(tmp_path: Path) -> Path:
    """The workers' module beside the topologies (a Redis test needs the extra too); the log path."""
    require_redis_package()
    (tmp_path / "keepers.py").write_text(WORKERS)
    return tmp_path / "life.log"


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    (tmp_path / "keepers.py").write_text(WORKERS)
    log = tmp_path / "life.log"
    path = tmp_path / "bot.yaml"
    path.write_text(topology(log, FIRST))
    yield path, log


def rewrite(path: Path, text: str) -> None:
    # As editors do: write a new file and rename it over the old one.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_watch_restarts_only_what_changed_and_keeps_the_rest(bot: tuple[Path, Path]) -> None:
    path, log = bot
    up = Proc(["up", str(path), "--watch"], cwd=path.parent)
    try:
        until(lambda: len([x for x in lines(log) if x.startswith("start")]) == 5, timeout=15)
        kept = starts(log, "a")
        rewrite(path, topology(log, SECOND))
        up.wait_for("applied revision", timeout=20)
        # Removed: c ends gracefully. Changed: b and p restart, q with its parent. Added: e, then
        # d, which waits for e. Untouched: a keeps running, the same object (its state).
        assert starts(log, "a") == kept
        assert [s.split()[2] for s in starts(log, "b")] == ["1", "2"]
        assert [s.split()[2] for s in starts(log, "p")] == ["1", "2"]
        assert len(starts(log, "q")) == 2
        assert "end c removed from the topology" in lines(log)
        assert starts(log, "c") and len(starts(log, "c")) == 1
        order = [x.split()[1] for x in lines(log) if x.startswith("start")]
        assert order.index("e") < order.index("d")
        applied = next(line for line in up.err if "applied revision" in line)
        assert "started d, e" in applied or "started e, d" in applied
        assert "stopped c" in applied and "restarted b, p, q" in applied
        ps = runnerconf("ps", str(path), "--format", "json", cwd=path.parent)
        assert ps.returncode == 0, ps.stderr
        status = json.loads(ps.stdout)
        assert status["drift"] == [] and status["runners"][0]["revision"] == status["revision"]
        workers = {w["name"]: w for w in status["runners"][0]["workers"]}
        assert workers["b"]["restarts"] == 1 and workers["a"]["restarts"] == 0
        assert workers["a"]["uptime"] > workers["b"]["uptime"]
        assert workers["c"]["state"] == "finished"
        assert runnerconf("ps", str(path), "--check", cwd=path.parent).returncode == 0
    finally:
        up.popen.send_signal(signal.SIGTERM)
        assert up.finish(timeout=30) == 0


def test_sighup_reloads_once_and_an_invalid_file_changes_nothing(bot: tuple[Path, Path]) -> None:
    path, log = bot
    up = Proc(["up", str(path)], cwd=path.parent)
    try:
        until(lambda: len(starts(log, "q")) == 1, timeout=15)
        first = runnerconf("ps", str(path), "--format", "json", cwd=path.parent)
        revision = json.loads(first.stdout)["runners"][0]["revision"]
        # Out of band: the file changes, nothing reloads without --watch; ps sees the drift.
        path.write_text(topology(log, FIRST + '- {name: f, class: "keepers:Keeper", params: {log: "LOG"}}\n'))
        time.sleep(1.0)
        assert not starts(log, "f")
        drifted = runnerconf("ps", str(path), "--check", cwd=path.parent)
        assert drifted.returncode == 1 and "worker f is missing" in drifted.stdout
        up.popen.send_signal(signal.SIGHUP)
        up.wait_for("applied revision")
        until(lambda: len(starts(log, "f")) == 1)
        assert runnerconf("ps", str(path), "--check", cwd=path.parent).returncode == 0
        assert len(starts(log, "a")) == 1  # nothing else restarted

        # An invalid file: logged with its place, and nothing changes.
        path.write_text(path.read_text().replace("stop_timeout: 5s", "stop_timeout: soon"))
        up.popen.send_signal(signal.SIGHUP)
        up.wait_for("the new topology is invalid; nothing changed")
        error = next(line for line in up.err if "nothing changed" in line)
        assert "bot.yaml:1:" in error and "stop_timeout" in error
        status = json.loads(runnerconf("ps", str(path), "--format", "json", "--set", "runner.stop_timeout=5s", cwd=path.parent).stdout)
        assert status["runners"][0]["revision"] != revision  # the one applied by SIGHUP, still
        assert len(starts(log, "a")) == 1 and len(starts(log, "f")) == 1
        assert up.popen.poll() is None
    finally:
        up.popen.send_signal(signal.SIGTERM)
        assert up.finish(timeout=30) == 0


def test_ps_without_an_up_process_is_exit_3(bot: tuple[Path, Path]) -> None:
    path, _ = bot
    result = runnerconf("ps", str(path), cwd=path.parent)
    assert result.returncode == 3 and "no `runnerconf up` of this topology" in result.stderr
    result = runnerconf("apply", str(path), cwd=path.parent)
    assert result.returncode == 2 and "SIGHUP" in result.stderr
    # pipecat's wire carries pipecat's messages only: said, before any connection is tried.
    shared = path.parent / "shared.yaml"
    shared.write_text("bus: {type: redis, url: 'redis://127.0.0.1:1/0', wire: pipecat}\nrunner: {name: r}\nworkers: []\n")
    for command in ("ps", "apply"):
        result = runnerconf(command, str(shared), cwd=path.parent)
        assert result.returncode == 2 and "wire: pipecat" in result.stderr, result.stderr


# -- across runners, on Redis ------------------------------------------------------------------

SPREAD = """\
bus: {{type: redis, url: "{url}", channel: spread, secret: "${{BUS_SECRET}}"}}
runners:
  - name: edge-1
    auto_end: false
    workers:
      - {{name: a, class: "keepers:Keeper", params: {{log: "{log}", label: "{a}"}}}}
  - name: edge-2
    auto_end: false
    workers:
      - {{name: b, class: "keepers:Keeper", params: {{log: "{log}", label: "{b}"}}}}
"""


@pytest.mark.redis
@pytest.mark.timeout(120)
def test_apply_converges_two_runners_and_ps_check_sees_the_drift(redis_server: RedisServer, tmp_path: Path) -> None:
    log = keepers(tmp_path)
    path = tmp_path / "spread.yaml"
    write = lambda a, b: path.write_text(SPREAD.format(url=redis_server.url, log=log, a=a, b=b))  # noqa: E731
    write("1", "1")
    env = {**os.environ, "BUS_SECRET": "a-secret-for-this-test-only", "PYTHONUNBUFFERED": "1"}
    edges = [Proc(["up", str(path), "--runner", name], env, cwd=tmp_path) for name in ("edge-1", "edge-2")]
    try:
        until(lambda: starts(log, "a") and starts(log, "b"), timeout=20)
        assert runnerconf("ps", str(path), "--check", cwd=tmp_path, env=env).returncode == 0

        write("2", "1")  # out of band: only a changes
        drift = runnerconf("ps", str(path), "--check", cwd=tmp_path, env=env)
        assert drift.returncode == 1 and "runner edge-1: worker a runs another configuration" in drift.stdout

        # A runner takes only its own part: applying to edge-2 alone leaves edge-1 as it was.
        only = runnerconf("apply", str(path), "--runner", "edge-2", cwd=tmp_path, env=env)
        assert only.returncode == 0, only.stdout + only.stderr
        assert "runner edge-2: ok: no worker changed" in only.stdout and "edge-1" not in only.stdout
        assert len(starts(log, "a")) == 1

        result = runnerconf("apply", str(path), "--format", "json", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert report["runners"]["edge-1"]["restarted"] == ["a"] and report["runners"]["edge-2"]["ok"]
        assert [s.split()[2] for s in starts(log, "a")] == ["1", "2"] and len(starts(log, "b")) == 1
        assert runnerconf("ps", str(path), "--check", cwd=tmp_path, env=env).returncode == 0

        # A revision whose id is not the hash of its content is refused, and changes nothing.
        reply = asyncio.run(_forged_apply(redis_server.url, env["BUS_SECRET"], path))
        assert reply is not None and not reply.ok and "does not match its content" in reply.outcome["error"]
        assert len(starts(log, "a")) == 2

        edges[1].popen.send_signal(signal.SIGTERM)
        assert edges[1].finish(timeout=30) == 0
        write("3", "2")
        late = runnerconf("apply", str(path), "--timeout", "3", cwd=tmp_path, env=env)
        assert late.returncode == 1 and "runner edge-2: FAILED: no answer within 3s" in late.stdout
        assert "runner edge-1: ok: restarted a" in late.stdout
    finally:
        for edge in edges:
            if edge.popen.poll() is None:
                edge.popen.send_signal(signal.SIGTERM)
            edge.finish(timeout=30)


async def _forged_apply(url: str, secret: str, path: Path) -> object:
    from runnerconf.config.build import build_bus
    from runnerconf.config.loader import load_topology
    from runnerconf.config.revision import Revision, make_revision
    from runnerconf.control.remote import apply_revision

    model = load_topology(path, environ={"BUS_SECRET": secret})
    real = make_revision(model)
    tampered = Revision(real.id, real.content.replace('"label":"2"', '"label":"evil"'), real.bus)
    replies = await apply_revision(build_bus(model), tampered, ["edge-1"], timeout=10)
    return replies.get("edge-1")


def test_watch_follows_the_env_file_and_overlays_too(bot: tuple[Path, Path]) -> None:
    path, log = bot
    (path.parent / ".env").write_text("LABEL=one\n")
    path.write_text(topology(log, '- {name: a, class: "keepers:Keeper", params: {log: "LOG", label: "${LABEL}"}}\n'))
    overlay = path.parent / "prod.yaml"
    overlay.write_text("runner: {stop_timeout: 5s}\n")
    up = Proc(["up", "-f", str(path), "-f", str(overlay), "--watch"], cwd=path.parent)
    try:
        until(lambda: len(starts(log, "a")) == 1, timeout=15)
        rewrite(path.parent / ".env", "LABEL=two\n")
        until(lambda: len(starts(log, "a")) == 2, timeout=15)
        assert starts(log, "a")[-1].split()[2] == "two"
        rewrite(overlay, 'workers:\n  - {name: b, class: "keepers:Keeper", params: {log: "%s"}}\n' % log)
        until(lambda: len(starts(log, "b")) == 1, timeout=15)
        assert len(starts(log, "a")) == 2
        (path.parent / ".env").unlink()  # gone: a clear line, no traceback, nothing changes
        up.wait_for("the files cannot be read")
        assert not any("Traceback" in line for line in up.err) and len(starts(log, "a")) == 2
    finally:
        up.popen.send_signal(signal.SIGTERM)
        assert up.finish(timeout=30) == 0


@pytest.mark.redis
@pytest.mark.timeout(60)
def test_apply_needs_a_signed_bus_and_runners_refuse_unsigned_revisions(redis_server: RedisServer, tmp_path: Path) -> None:
    log = keepers(tmp_path)
    path = tmp_path / "open.yaml"
    path.write_text(
        f'bus: {{type: redis, url: "{redis_server.url}", channel: open}}\n'
        f'runner: {{name: r, auto_end: false}}\nworkers:\n  - {{name: a, class: "keepers:Keeper", params: {{log: "{log}"}}}}\n'
    )
    result = runnerconf("apply", str(path), cwd=tmp_path)
    assert result.returncode == 2 and "signed bus" in result.stderr
    up = Proc(["up", str(path)], {**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=tmp_path)
    try:
        until(lambda: len(starts(log, "a")) == 1, timeout=15)
        # Someone on the channel sends a revision anyway (its hash is right): it is refused.
        reply = asyncio.run(_unsigned_apply(path))
        assert reply is not None and not reply.ok and "signed bus" in reply.outcome["error"]
        assert len(starts(log, "a")) == 1 and up.popen.poll() is None
    finally:
        up.popen.send_signal(signal.SIGTERM)
        assert up.finish(timeout=30) == 0


async def _unsigned_apply(path: Path) -> object:
    from runnerconf.config.build import build_bus
    from runnerconf.config.loader import load_topology
    from runnerconf.config.revision import make_revision
    from runnerconf.control.remote import apply_revision

    model = load_topology(path, environ={})
    for w in model.workers:
        w.params["label"] = "evil"  # type: ignore[attr-defined]
    replies = await apply_revision(build_bus(model), make_revision(model), ["r"], timeout=10)
    return replies.get("r")


def test_the_control_socket_is_made_only_in_a_private_directory(bot: tuple[Path, Path], tmp_path: Path) -> None:
    path, log = bot
    shared = tmp_path / "shared-dir"
    shared.mkdir()
    shared.chmod(0o777)  # as a directory another user made first in /tmp would be
    env = {**os.environ, "RUNNERCONF_CONTROL_DIR": str(shared), "PYTHONUNBUFFERED": "1"}
    up = Proc(["up", str(path)], env, cwd=path.parent)
    try:
        up.wait_for("cannot serve the control socket")
        assert "not a private directory" in next(line for line in up.err if "control socket" in line)
        assert not list(shared.iterdir())
        result = runnerconf("ps", str(path), cwd=path.parent, env=env)
        assert result.returncode == 3
    finally:
        up.popen.send_signal(signal.SIGTERM)
        assert up.finish(timeout=30) == 0
