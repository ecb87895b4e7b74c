"""The commands README.md shows are true: each is run here as a user would run it."""

from __future__ import annotations

import os
import re
import shlex
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[list[str]]:
    blocks = re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)
    return [[line for line in b.splitlines() if line.strip()] for b in blocks]


def env_with_bin(bin_dir: Path | str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_readme_starts_with_the_two_commands() -> None:
    first = code_blocks("sh")[0]
    assert first == ["pip install . && runnerconf up configs/hello.yaml", "pip install -e '.[test]' && python -m pytest"]
    # CI runs the test command exactly as written.
    assert first[1] in (ROOT / ".ci" / "run").read_text()


@pytest.mark.timeout(300)
def test_install_and_run_command_works_in_a_fresh_environment(tmp_path: Path) -> None:
    """`pip install . && runnerconf up configs/hello.yaml`, in a new virtualenv.

    The new environment sees this one's packages through a .pth file, so pip installs runnerconf
    itself (its entry point, its package data) without fetching its dependencies again; the build
    backend is fetched as for any user, in pip's isolated build environment.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    Path(purelib, "outer-env.pth").write_text("\n".join(p for p in ours if p != str(ROOT)) + "\n")
    install, run = code_blocks("sh")[0][0].split(" && ")
    args = shlex.split(install)
    assert args[:2] == ["pip", "install"]
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", *args[2:]],
        cwd=ROOT,
        check=True,
        env=env_with_bin(venv / "bin"),
    )
    out = subprocess.run(run, shell=True, cwd=ROOT, env=env_with_bin(venv / "bin"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [">> Hello, world!", ">> Hello, runnerconf!", ">> Hello, bots!"]
    # It ran the runnerconf installed in the new environment, not this one's.
    which = subprocess.run("command -v runnerconf", shell=True, env=env_with_bin(venv / "bin"), capture_output=True, text=True)
    assert which.stdout.strip() == str(venv / "bin" / "runnerconf")


COMMANDS = [line for block in code_blocks("sh")[1:] for line in block if line.startswith("runnerconf ")]


def test_the_commands_section_is_found() -> None:
    assert len(COMMANDS) >= 8


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command: str) -> None:
    out = subprocess.run(
        command,
        shell=True,
        cwd=ROOT,
        env=env_with_bin(Path(sys.executable).parent),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert (out.stdout + out.stderr).strip(), "every README command shows something"


TOPOLOGY_BLOCKS = [b for b in re.findall(r"```yaml\n(.*?)```", README, flags=re.S) if re.search(r"^(workers|runners):", b, re.M)]


def test_the_readme_shows_topologies() -> None:
    assert len(TOPOLOGY_BLOCKS) >= 3


@pytest.mark.parametrize("text", TOPOLOGY_BLOCKS, ids=lambda t: t.splitlines()[0][:40])
def test_every_topology_in_the_readme_is_valid(text: str, request: pytest.FixtureRequest) -> None:
    from runnerconf.config import load_topology

    if "type: stt_pipeline" in text:  # the kind of the test package (tests/fixtures/kind_package)
        request.getfixturevalue("kinds_installed")
    load_topology(text, environ={})


PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("code", PYTHON_BLOCKS, ids=lambda c: c.splitlines()[0][:40])
def test_every_python_example_in_the_readme_runs(code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), "the example shows what it did"
