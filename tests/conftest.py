"""Fixtures: a real redis-server of the test's own, on a free loopback port; a package of worker
kinds, really installed with pip."""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runnerconf.config.kinds import installed_kinds

REQUIRE_REDIS = os.environ.get("RUNNERCONF_REQUIRE_REDIS") == "1"

# Validators kept between runs (runnerconf.config.validator_cache) go to a directory of this test
# session, which every command the tests run inherits: never the user's cache, never one that an
# earlier session left.
_CACHE_DIR = tempfile.mkdtemp(prefix="runnerconf-test-cache-")
os.environ["RUNNERCONF_CACHE_DIR"] = _CACHE_DIR
atexit.register(shutil.rmtree, _CACHE_DIR, ignore_errors=True)


def require_redis_package() -> None:
    """Skip (with the reason) when redis-py is missing; fail instead where Redis tests must run."""
    try:
        import redis  # noqa: F401
    except ImportError:
        message = "redis-py is not installed (pip install -e '.[test]' brings it)"
        if REQUIRE_REDIS:
            pytest.fail(message + " and RUNNERCONF_REQUIRE_REDIS=1 says the Redis tests must run", pytrace=False)
        pytest.skip(message, allow_module_level=True)


REQUIRE_PIPECAT = os.environ.get("RUNNERCONF_REQUIRE_PIPECAT") == "1"


def require_pipecat() -> None:
    """Skip (with the reason) when pipecat-ai is missing; fail instead where its tests must run."""
    try:
        import pipecat  # noqa: F401
    except ImportError:
        message = "pipecat-ai is not installed (pip install -e '.[test]' brings it)"
        if REQUIRE_PIPECAT:
            pytest.fail(message + " and RUNNERCONF_REQUIRE_PIPECAT=1 says the pipecat tests must run", pytrace=False)
        pytest.skip(message, allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server process owned by one test: it can be stopped and started again."""

    def __init__(self, binary: str, directory: Path, *extra: str) -> None:
        self.binary = binary
        self.directory = directory
        self.extra = list(extra)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(self.directory / "redis.log"),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="session")
def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server); the Redis bus tests need a real server"
        if REQUIRE_REDIS:
            pytest.fail(message + " and RUNNERCONF_REQUIRE_REDIS=1 says they must run")
        pytest.skip(message)
    return binary


@pytest.fixture
def redis_server(redis_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(redis_binary, directory)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_redis(redis_binary: str, tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """A factory of test-owned redis-servers with extra options (stopped at the end)."""
    servers: list[RedisServer] = []

    def make(*extra: str) -> RedisServer:
        directory = tmp_path / f"redis{len(servers)}"
        directory.mkdir()
        server = RedisServer(redis_binary, directory, *extra)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


KIND_PACKAGE = Path(__file__).resolve().parent / "fixtures" / "kind_package"


@pytest.fixture(scope="module")
def kinds_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pip-installs the test package into a directory of its own, put on sys.path (and on
    PYTHONPATH for the command line): the test environment itself is left as it was."""
    target = tmp_path_factory.mktemp("kinds")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(KIND_PACKAGE)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    installed_kinds.cache_clear()
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        installed_kinds.cache_clear()
        for name in ("rc_test_kinds", "rc_test_kinds_broken"):
            sys.modules.pop(name, None)
