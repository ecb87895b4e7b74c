"""A runnerconf runner and a pipecat-ai runner (pipecat's own WorkerRunner and RedisBus) in two
processes, on one channel of a test-owned redis-server, with ``wire: pipecat``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.conftest import RedisServer, require_pipecat, require_redis_package
from tests.helpers import ROOT, Proc

require_redis_package()
require_pipecat()

PIPECAT_SIDE = ROOT / "tests" / "scripts" / "pipecat_side.py"


@pytest.mark.redis
def test_a_runnerconf_runner_and_a_pipecat_runner_share_a_channel(redis_server: RedisServer, tmp_path: Path) -> None:
    channel = f"pipecat:test-{uuid.uuid4().hex[:8]}"
    shutil.copy(ROOT / "tests" / "fixtures" / "rc_side.py", tmp_path / "rc_side.py")
    topology = tmp_path / "topology.yaml"
    topology.write_text(
        textwrap.dedent(
            f"""\
            runner: {{name: rc-runner}}
            bus:
              type: redis
              url: {redis_server.url}
              channel: "{channel}"
              wire: pipecat
              data_types: [__main__.Chat]     # the pipecat side's data message (its script is __main__)
              external_workers: [pc-worker]   # runs on the pipecat runner, not in this file
            workers:
              - {{name: rc-worker, class: rc_side:RcWorker, watch: [pc-worker]}}
            """
        )
    )
    pc = Proc([], command=[sys.executable, str(PIPECAT_SIDE), redis_server.url, channel])
    rc = Proc(["up", str(topology)], cwd=tmp_path)
    try:
        pc.wait_for("pc: running", stream="out")
        # Each sees the other's worker ready, and a data message crosses both ways.
        pc.wait_for("pc: saw rc-worker ready", stream="out")
        rc.wait_for("rc: saw pc-worker ready", stream="out")
        rc.wait_for("rc: got {'hello': 'from pipecat'}", stream="out")
        pc.wait_for("pc: got {'hello': 'from runnerconf'}", stream="out")

        down = subprocess.run(
            [sys.executable, "-m", "runnerconf", "down", str(topology), "--timeout", "15"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert down.returncode == 0, down.stdout + down.stderr
        lines = down.stdout.splitlines()
        assert "runner rc-runner: stopped" in lines
        # pipecat's runner takes the end too (it ends on any end of the session, whatever its
        # target) but never says so; `down` lists it if it answered before the topology's own did.
        assert set(lines) <= {"runner rc-runner: stopped", "runner pc-runner: asked to end (a pipecat runner: it does not say when it has stopped)"}
        assert rc.finish(timeout=30) == 0, "\n".join(rc.err)
        assert any("exiting with code 0" in line for line in rc.err)
        pc.wait_for("pc: runner ended", stream="out")
        assert pc.finish(timeout=30) == 0
    finally:
        rc.finish(timeout=5)
        pc.finish(timeout=5)
    # Nothing either side sent was refused by the other.
    assert not [line for line in rc.err if "skipped" in line], rc.err
