"""User code for the builder tests (imported only by resolve/build, never by validation)."""

from __future__ import annotations

from typing import Any

from runnerconf.workers.base_worker import BaseWorker

IMPORTS: list[str] = []
IMPORTS.append(__name__)


class Echo(BaseWorker):
    def __init__(self, name: str | None = None, *, prefix: str, times: int = 1) -> None:
        super().__init__(name)
        self.prefix = prefix
        self.times = times


class Nameless(BaseWorker):
    """Takes no name argument: the builder names it after construction."""

    def __init__(self, level: int = 0) -> None:
        super().__init__()
        self.level = level


class Exploding(BaseWorker):
    def __init__(self, name: str | None = None) -> None:
        raise RuntimeError("cannot connect")


class NotAWorker:
    pass


def make_echo(prefix: str = "f") -> Echo:
    return Echo(prefix=prefix)


async def make_echo_async(prefix: str = "af") -> Echo:
    return Echo(prefix=prefix)


def make_nothing() -> Any:
    return 42


def add(frame: int, *, amount: int = 1) -> int:
    return frame + amount


class Multiply:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, frame: int) -> int:
        return frame * self.factor


NOT_CALLABLE = 3
