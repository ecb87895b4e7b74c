"""``type: pipecat_pipeline``: real pipecat-ai pipelines in topologies, run as a user runs them.

pipecat-ai is a test dependency: CI never skips these (RUNNERCONF_REQUIRE_PIPECAT=1 there); on a
machine without it they skip with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path


from tests.conftest import require_pipecat
from tests.helpers import ROOT, Proc

require_pipecat()

PROCS = ROOT / "tests" / "fixtures" / "pc_procs.py"


def topology(tmp_path: Path, text: str) -> Path:
    shutil.copy(PROCS, tmp_path / "pc_procs.py")
    f = tmp_path / "topology.yaml"
    f.write_text(textwrap.dedent(text))
    return f


def runnerconf(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "runnerconf", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_the_example_bot_runs_as_it_is() -> None:
    proc = runnerconf("up", "configs/pipecat-bot.yaml")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["Ada> Hello! I am Ada.", "Ada> My name is Ada.", "Ada> Goodbye!"]
    # pipecat's own log lines go through runnerconf's logging: no loguru-format line on stderr.
    assert proc.stderr and not [line for line in proc.stderr.splitlines() if " | " in line and "pipecat" in line]
    assert "exiting with code 0" in proc.stderr


def test_frames_in_frames_out_with_processor_params_and_factories(tmp_path: Path) -> None:
    f = topology(
        tmp_path,
        """\
        workers:
          - name: bot
            type: pipecat_pipeline
            processors:
              - pc_procs:Recorder
              - call: pc_procs:make_shout
                params: {suffix: "!"}
            frames: [hello, world]
            stop_when_done: true
            send_to: printer
          - {name: printer, class: pc_procs:Printer, parent: bot}
        """,
    )
    proc = runnerconf("up", str(f), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # The recorder prints as frames pass; the printer, in its own task, as they arrive.
    assert sorted(lines) == sorted(["seen: hello", "seen: world", "got: HELLO!", "got: WORLD!", "seen: <end>"])
    assert lines.index("seen: hello") < lines.index("got: HELLO!") < lines.index("got: WORLD!")


SLOW = """\
runner: {{name: slow, stop_timeout: {grace}}}
workers:
  - name: bot
    type: pipecat_pipeline
    processors:
      - call: pc_procs:Slow
        params: {{delay: {delay}}}
      - pc_procs:Recorder
    frames: [one, two, three, four]
    params: {{idle_timeout_secs: null}}
"""


def test_a_graceful_end_drains_the_pipeline(tmp_path: Path) -> None:
    f = topology(tmp_path, SLOW.format(grace="20s", delay=0.3))
    proc = Proc(["up", str(f)], cwd=tmp_path)
    proc.wait_for("seen: one", stream="out")
    proc.popen.send_signal(signal.SIGINT)
    code = proc.finish()
    assert code == 0, "\n".join(proc.err)
    # The EndFrame queued by the end comes after every frame queued before it.
    assert proc.out == ["seen: one", "seen: two", "seen: three", "seen: four", "seen: <end>"]
    assert any("exiting with code 0" in line for line in proc.err)


def test_a_second_signal_cancels_and_exits_130(tmp_path: Path) -> None:
    f = topology(tmp_path, SLOW.format(grace="60s", delay=5))
    proc = Proc(["up", str(f)], cwd=tmp_path)
    proc.wait_for("worker bot started")
    proc.popen.send_signal(signal.SIGINT)
    proc.wait_for("ending gracefully")
    proc.popen.send_signal(signal.SIGINT)
    code = proc.finish(timeout=30)
    assert code == 130, "\n".join(proc.err)
    assert "seen: four" not in proc.out and "seen: <end>" not in proc.out


def test_a_stop_past_the_grace_period_cancels_the_pipeline(tmp_path: Path) -> None:
    f = topology(tmp_path, SLOW.format(grace="300ms", delay=5))
    proc = Proc(["up", str(f)], cwd=tmp_path)
    proc.wait_for("worker bot started")
    proc.popen.send_signal(signal.SIGTERM)
    code = proc.finish(timeout=30)
    assert code == 0, "\n".join(proc.err)  # a graceful stop (SIGTERM) cut short by the ladder
    assert any("bot" in line and "cancelled" in line for line in proc.err), proc.err


ERRORS = """\
workers:
  - name: bot
    type: pipecat_pipeline
    processors: [pc_procs:Boom, {{call: pc_procs:Slow, params: {{delay: 0.3}}}}, pc_procs:Recorder]
    frames: [before, boom, after]
    stop_when_done: true
    on_error: {policy}
"""


def test_on_error_skip_logs_and_goes_on(tmp_path: Path) -> None:
    f = topology(tmp_path, ERRORS.format(policy="skip"))
    proc = runnerconf("up", str(f), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["seen: before", "seen: after", "seen: <end>"]
    assert "boom frame" in proc.stderr


def test_on_error_fail_fails_the_worker_and_up_exits_1(tmp_path: Path) -> None:
    f = topology(tmp_path, ERRORS.format(policy="fail"))
    proc = runnerconf("up", str(f), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    # The error cancelled the pipeline: what was behind it did not get through.
    assert "seen: after" not in proc.stdout and "seen: <end>" not in proc.stdout
    assert "worker bot failed" in proc.stderr and "boom frame" in proc.stderr


def test_a_pipeline_sends_to_a_plain_worker_and_back_without_looping(tmp_path: Path) -> None:
    f = topology(
        tmp_path,
        """\
        runner: {stop_timeout: 5s}
        workers:
          - name: bot
            type: pipecat_pipeline
            processors: [pc_procs:Recorder]
            frames: [ping]
            send_to: echo
            params: {idle_timeout_secs: null}
          - {name: echo, class: pc_procs:Echo, parent: bot}
        """,
    )
    proc = Proc(["up", str(f)], cwd=tmp_path)
    proc.wait_for("seen: echo: ping", stream="out")
    proc.popen.send_signal(signal.SIGINT)
    assert proc.finish() == 0, "\n".join(proc.err)
    # 'ping' went to echo; echo's answer came back into the pipeline, and was not sent again.
    assert [line for line in proc.out if line.startswith("echo got")] == ["echo got: ping"]
    assert proc.out[:3] == ["seen: ping", "echo got: ping", "seen: echo: ping"]


def test_converters_carry_other_frame_types(tmp_path: Path) -> None:
    f = topology(
        tmp_path,
        """\
        workers:
          - name: stt
            type: pipecat_pipeline
            processors: [pc_procs:Recorder]
            converters: [pc_procs:Transcripts]
            frames: [{transcript: "turn the lights on", user: u1}]
            stop_when_done: true
            send_to: printer
          - {name: printer, class: pc_procs:Printer, parent: stt}
        """,
    )
    proc = runnerconf("up", str(f), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "got: {'transcript': 'turn the lights on', 'user': 'u1'}" in proc.stdout.splitlines()


def test_validate_imports_checks_processors_params_and_converters_against_pipecat(tmp_path: Path) -> None:
    f = topology(
        tmp_path,
        """\
        workers:
          - name: bot
            type: pipecat_pipeline
            processors: [pc_procs:Printer, {call: pc_procs:Shout, params: {sufix: "!"}}, pc_procs:missing]
            params:
              idle_timeout_sec: 30
              params: {enable_metric: true, audio_in_sample_rate: "8000"}
              processor_unusable_policy: stop
              clock: system
              idle_timeout_frames: [pipecat.frames.frames:TextFrame, pc_procs:Shout]
            converters: [pc_procs:Shout]
        """,
    )
    assert runnerconf("validate", str(f), cwd=tmp_path).returncode == 0  # structure only: fine
    proc = runnerconf("validate", "--imports", "--format", "json", str(f), cwd=tmp_path)
    assert proc.returncode == 1
    got = {(p["path"], p["line"]): p["message"] for p in json.loads(proc.stdout)}
    assert got == {
        ("workers[0].processors[0]", 4): "worker 'bot': 'pc_procs:Printer' is not a pipecat FrameProcessor (it is the class Printer)",
        ("workers[0].processors[1]", 4): "worker 'bot': params do not fit pc_procs:Shout: got an unexpected keyword argument 'sufix' (signature: Shout(suffix: str = ''))",
        ("workers[0].processors[2]", 4): "worker 'bot': module 'pc_procs' has no attribute 'missing'",
        ("workers[0].params.idle_timeout_sec", 6): got[("workers[0].params.idle_timeout_sec", 6)],
        ("workers[0].params.params.enable_metric", 7): got[("workers[0].params.params.enable_metric", 7)],
        ("workers[0].params.params.audio_in_sample_rate", 7): "expected an integer; got '8000' (a string: write it without quotes)",
        ("workers[0].params.processor_unusable_policy", 8): "expected continue, end or cancel; got 'stop'",
        ("workers[0].params.clock", 9): got[("workers[0].params.clock", 9)],
        ("workers[0].params.idle_timeout_frames", 10): "'pc_procs:Shout' is not a Frame class (it is the class Shout)",
        ("workers[0].converters[0]", 11): "worker 'bot': 'pc_procs:Shout' is not a frame converter: it has neither to_payload() nor from_payload()",
    }
    assert got[("workers[0].params.idle_timeout_sec", 6)].startswith("unknown key 'idle_timeout_sec'; did you mean 'idle_timeout_secs'?")
    assert got[("workers[0].params.params.enable_metric", 7)].startswith("unknown key 'enable_metric'; did you mean 'enable_metrics'?")
    assert got[("workers[0].params.clock", 9)].startswith("unknown key 'clock'")  # a clock is no YAML value


def test_without_the_extra_it_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    """pipecat-ai made unimportable in the child process, as on a machine without the extra."""
    blocker = tmp_path / "block" / "sitecustomize.py"
    blocker.parent.mkdir()
    blocker.write_text("import sys\nsys.modules['pipecat'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent)}
    assert runnerconf("validate", "configs/pipecat-bot.yaml", env=env).returncode == 0
    hint = "pipecat pipelines need the pipecat extra: pip install 'runnerconf[pipecat]'"
    proc = runnerconf("validate", "--imports", "configs/pipecat-bot.yaml", env=env)
    assert proc.returncode == 1 and f"configs/pipecat-bot.yaml:10:11: error: workers[0].type: worker 'bot': {hint}" in proc.stdout
    proc = runnerconf("up", "configs/pipecat-bot.yaml", env=env)
    assert proc.returncode == 3 and hint in proc.stderr


def test_validate_and_the_core_never_import_pipecat() -> None:
    code = textwrap.dedent(
        """\
        import sys
        import runnerconf, runnerconf.config, runnerconf.pipecat
        from runnerconf.cli import main
        sys.argv = ["runnerconf", "validate", "configs/pipecat-bot.yaml"]
        try:
            main()
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("pipecat", "loguru")))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


def test_a_send_to_cycle_is_refused(tmp_path: Path) -> None:
    f = topology(
        tmp_path,
        """\
        workers:
          - {name: a, type: pipecat_pipeline, processors: [pc_procs:Recorder], send_to: b}
          - {name: b, type: pipecat_pipeline, processors: [pc_procs:Recorder], send_to: a}
        """,
    )
    proc = runnerconf("validate", str(f), cwd=tmp_path)
    assert proc.returncode == 1
    assert "workers[0].send_to: send_to forms a cycle (what one sends would come back to it for ever): a -> b -> a" in proc.stdout
