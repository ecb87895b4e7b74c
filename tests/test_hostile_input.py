"""Hostile and clumsy input ends in a clear error (exit 1 or 2, never a traceback, never a hang),
on the real command line."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runnerconf.config.files import FIFO_WAIT

from .helpers import ROOT

HELLO = "workers:\n  - {name: w, class: 'runnerconf.workers.base_worker:BaseWorker'}\n"


def cli(*args: str, cwd: Path = ROOT, stdin: bytes | None = None, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m runnerconf`` the way a user does; its peak memory is put in ``.maxrss``."""
    proc = subprocess.run(
        [sys.executable, "-m", "runnerconf", *args],
        cwd=cwd,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return proc


def assert_clear(proc: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in proc.stderr + proc.stdout, (fragment, proc.stdout, proc.stderr)


def child_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


# -- pathological YAML ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("workers: " + "[" * 10_000 + "]" * 10_000 + "\n", "1:"),
        ("a:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(200)) + " " * 201 + "v\n", "nested deeper"),
    ],
    ids=["flow-10000", "block-200"],
)
def test_deep_nesting_is_refused_with_its_line(tmp_path: Path, text: str, fragment: str) -> None:
    f = tmp_path / "deep.yaml"
    f.write_text(text)
    proc = cli("validate", str(f))
    assert_clear(proc, 1, "nested deeper", fragment)


def test_a_5000_digit_integer_is_refused_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    f.write_text("runner:\n  stop_timeout: " + "9" * 5000 + "\n" + HELLO)
    proc = cli("validate", str(f))
    assert_clear(proc, 1, "big.yaml:2:17", "5,000 digits is too long")


@pytest.mark.parametrize("megabytes", [20, 50])
def test_huge_files_are_refused_quickly_in_bounded_memory(tmp_path: Path, megabytes: int) -> None:
    f = tmp_path / "huge.yaml"
    with f.open("w") as fh:
        fh.write("workers:\n")
        line = "  - {name: w, class: 'm:C'}\n"
        fh.write(line * (megabytes * (1 << 20) // len(line)))
    t0 = time.monotonic()
    proc = cli("validate", str(f))
    elapsed = time.monotonic() - t0
    assert_clear(proc, 1, "larger than 16 MiB")
    assert elapsed < 20  # generous for a shared machine: it never parses the file


def test_a_huge_list_within_the_size_limit_is_refused_before_it_is_built(tmp_path: Path) -> None:
    f = tmp_path / "list.yaml"
    f.write_text("x: [" + "1," * 3_000_000 + "1]\n")  # 6 MB, 3 million values
    proc = cli("validate", str(f))
    assert_clear(proc, 1, "more than 500,000 values")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(".nan", "finite"), (".inf", "finite"), ("-.inf", "finite"), ("1e400", "finite")],
)
def test_nan_and_infinity_are_refused_for_durations_and_numbers(tmp_path: Path, value: str, expected: str) -> None:
    for key in ("stop_timeout", "cancel_timeout"):
        f = tmp_path / "nan.yaml"
        f.write_text(f"runner:\n  {key}: {value}\n" + HELLO)
        proc = cli("validate", str(f))
        assert_clear(proc, 1, f"runner.{key}", expected, "nan.yaml:2:")
    f = tmp_path / "factor.yaml"
    f.write_text(
        f"workers:\n  - name: c\n    type: command\n    command: [true]\n    backoff: {{factor: {value}}}\n"
    )
    assert_clear(cli("validate", str(f)), 1, "backoff.factor", "factor.yaml:5:")


# -- files that are not regular files ------------------------------------------------------------


def test_standard_input_and_process_substitution(tmp_path: Path) -> None:
    assert_clear(cli("validate", "-", stdin=HELLO.encode()), 0, "1 file(s) checked: 0 error(s)")
    assert_clear(cli("validate", "/dev/stdin", stdin=HELLO.encode()), 0, "0 error(s)")
    assert_clear(cli("validate", "-", stdin=b"workers: [\n"), 1, "<stdin>:2:1")
    # validate <(cat file): a pipe under /dev/fd, read like any file.
    f = tmp_path / "t.yaml"
    f.write_text(HELLO)
    proc = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m runnerconf validate <(cat "{f}")'], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_a_fifo_nobody_writes_to_is_given_up(tmp_path: Path) -> None:
    fifo = tmp_path / "topology.yaml"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    proc = cli("validate", str(fifo), timeout=FIFO_WAIT + 30)
    assert_clear(proc, 1, "a FIFO nobody wrote to")
    assert time.monotonic() - t0 < FIFO_WAIT + 20


def test_a_fifo_that_is_written_to_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "topology.yaml"
    os.mkfifo(fifo)

    def write() -> None:
        time.sleep(0.5)
        with open(fifo, "w") as fh:
            fh.write(HELLO)

    writer = threading.Thread(target=write)
    writer.start()
    proc = cli("validate", str(fifo))
    writer.join()
    assert_clear(proc, 0, "0 error(s)")


def test_a_path_with_a_newline_is_a_path_never_yaml_text(tmp_path: Path) -> None:
    odd = tmp_path / "runner:\n  name: x\nworkers: []\n.yaml"
    odd.write_text(HELLO)
    assert_clear(cli("validate", str(odd)), 0, "0 error(s)")
    odd.unlink()
    proc = cli("validate", str(odd))
    assert proc.returncode == 2 and "does not exist" in proc.stderr  # not parsed as a topology


# -- bad arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\x00\x01\x02binary\xff", "NUL byte"),
        ("KEY=caf\xe9\n".encode("latin-1"), "is not UTF-8"),
    ],
    ids=["binary", "latin-1"],
)
def test_env_files_that_are_not_text_are_usage_errors(tmp_path: Path, content: bytes, fragment: str) -> None:
    topology = tmp_path / "t.yaml"
    topology.write_text(HELLO)
    env = tmp_path / "bad.env"
    env.write_bytes(content)
    proc = cli("validate", "--env-file", str(env), str(topology))
    assert_clear(proc, 2, "--env-file", fragment, "bad.env")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("runner.name=!!binary aGVsbG8=", "unsupported YAML tag"),
        ("runner.name=&a [*a]", "an alias refers to a value that contains it"),
        ("workers.w.params.x=" + "[" * 5000 + "]" * 5000, "nested deeper"),
        ("workers.w.params.x=[" + ", ".join(["&a [x]"] + ["*a"] * 10) + "]", None),
        ("workers.grüßer.params.x=1", "is not a key or a worker name"),
        ("nonsense", "expected PATH=VALUE"),
    ],
    ids=["bytes", "recursive-alias", "brackets", "aliases-ok", "non-ascii", "no-equals"],
)
def test_bad_set_values_are_usage_errors(tmp_path: Path, value: str, fragment: str | None) -> None:
    topology = tmp_path / "t.yaml"
    topology.write_text(HELLO)
    proc = cli("validate", "--set", value, str(topology))
    if fragment is None:
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr
        return
    assert_clear(proc, 2, "--set", fragment)


def test_a_set_date_stays_a_string_and_an_alias_bomb_is_bounded(tmp_path: Path) -> None:
    topology = tmp_path / "t.yaml"
    topology.write_text(HELLO)
    proc = cli("config", "--set", "workers.w.params.when=2024-01-01", str(topology))
    assert_clear(proc, 0, "when: '2024-01-01'")
    bomb = "[" + ", ".join(["&a [x, x, x, x, x, x, x, x, x, x]"] + [f"&{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(8)]) + "]"
    t0 = time.monotonic()
    proc = cli("validate", "--set", f"workers.w.params.x={bomb}", str(topology))
    assert_clear(proc, 2, "alias bomb")
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize(
    ("runner", "fragment"),
    [("", "is not a runner name"), ("counter", "is a worker, not a runner"), ("nobody", "no runner named"), ("bad name", "is not a runner name")],
)
def test_runner_must_name_a_runner(runner: str, fragment: str) -> None:
    proc = cli("up", "configs/distributed.yaml", "--runner", runner, "--dry-run")
    assert_clear(proc, 2, fragment, "runners: edge-1, edge-2")


def test_schema_into_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    proc = cli("schema", "-o", str(tmp_path / "no" / "such" / "dir" / "s.json"))
    assert_clear(proc, 2, "cannot write", "No such file or directory")


# -- user code that misbehaves ---------------------------------------------------------------------

MISBEHAVING = {
    "exits_on_import": "raise SystemExit(0)\n",
    "interrupts_on_import": "raise KeyboardInterrupt\n",
    "getattr_raises": "def __getattr__(name):\n    raise RuntimeError('no ' + name)\n",
    "exits_in_init": (
        "from runnerconf.workers.base_worker import BaseWorker\n"
        "class W(BaseWorker):\n"
        "    def __init__(self, name=None):\n"
        "        raise SystemExit(4)\n"
    ),
}


@pytest.mark.parametrize(
    ("module", "path", "fragment"),
    [
        ("exits_on_import", "exits_on_import:W", "raised SystemExit(0)"),
        ("interrupts_on_import", "interrupts_on_import:W", "raised KeyboardInterrupt"),
        ("getattr_raises", "getattr_raises:W", "raised RuntimeError: no W"),
        ("exits_in_init", "exits_in_init:W", "raised SystemExit(4)"),
    ],
)
def test_user_code_that_exits_or_raises_is_a_start_up_error(tmp_path: Path, module: str, path: str, fragment: str) -> None:
    (tmp_path / f"{module}.py").write_text(MISBEHAVING[module])
    topology = tmp_path / "t.yaml"
    topology.write_text(f"workers:\n  - name: victim\n    class: {path}\n")
    proc = cli("up", str(topology), cwd=tmp_path)
    assert_clear(proc, 3, "t.yaml:3:", "worker 'victim'", fragment)


def test_control_characters_from_the_file_are_escaped(tmp_path: Path) -> None:
    f = tmp_path / "esc.yaml"
    f.write_text('workers:\n  - name: w\n    class: "m:C"\n    "\\e[31mred\\e[0m": 1\n')
    proc = cli("validate", str(f))
    assert proc.returncode == 1
    assert "\x1b" not in proc.stdout + proc.stderr
    assert "\\x1b[31mred" in proc.stdout


def test_redis_passwords_never_reach_the_output(tmp_path: Path) -> None:
    secret = "p@ss:w0rd-XYZ"
    f = tmp_path / "r.yaml"
    f.write_text(f"bus:\n  type: redis\n  url: redis://user:{secret}@127.0.0.1:1/0?password=QSECRET\n" + HELLO)
    for args in (("config", str(f)), ("up", str(f), "--dry-run"), ("config", str(f), "--format", "json")):
        proc = cli(*args)
        assert proc.returncode == 0, proc.stderr
        assert secret not in proc.stdout + proc.stderr and "QSECRET" not in proc.stdout + proc.stderr
        assert "user:***@127.0.0.1" in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"bus:\n  type: redis\n  url: http://user:{secret}@host/\n" + HELLO)
    proc = cli("validate", str(bad))
    assert proc.returncode == 1 and secret not in proc.stdout + proc.stderr and "***" in proc.stdout
    proc = cli("up", str(f), "--set", "bus.connect_timeout=0.2", env={"PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 3
    assert secret not in proc.stdout + proc.stderr and "QSECRET" not in proc.stderr


def test_modules_beside_the_topology_shadow_nothing(tmp_path: Path) -> None:
    for name in ("redis", "hiredis", "yaml", "click"):
        (tmp_path / f"{name}.py").write_text("raise RuntimeError('the stray module beside the topology was imported')\n")
    (tmp_path / "mine.py").write_text("from runnerconf.workers.base_worker import BaseWorker\nclass Mine(BaseWorker):\n    async def main(self):\n        print('mine ran')\n")
    topology = tmp_path / "t.yaml"
    topology.write_text("bus: {type: redis, url: 'redis://127.0.0.1:1/0', connect_timeout: 0.2}\nworkers:\n  - {name: m, class: 'mine:Mine'}\n")
    proc = cli("up", str(topology))
    assert proc.returncode == 3 and "cannot reach Redis" in proc.stderr and "stray module" not in proc.stderr
    topology.write_text("workers:\n  - {name: m, class: 'mine:Mine'}\n")
    proc = cli("up", str(topology), cwd=tmp_path)  # modules beside it still import
    assert proc.returncode == 0 and "mine ran" in proc.stdout, proc.stderr
