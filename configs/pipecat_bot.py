"""Processors of configs/pipecat-bot.yaml: a pipecat text bot that needs no network and no key.

``Normalise`` tidies what the user typed; ``RuleBasedReply`` stands in for an LLM service,
answering by keyword. Both are ordinary pipecat ``FrameProcessor``\\ s: swap ``RuleBasedReply`` for
an LLM service (and add STT and TTS) and the topology stays the same.
"""

from __future__ import annotations

import re

from pipecat.frames.frames import Frame, TextFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class Normalise(FrameProcessor):
    """Collapses white space in text frames and drops empty ones."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame):
            text = " ".join(frame.text.split())
            if not text:
                return
            frame = TextFrame(text=text)
        await self.push_frame(frame, direction)


class RuleBasedReply(FrameProcessor):
    """Answers each user text frame with a reply frame, by the first rule whose words it holds."""

    def __init__(self, *, bot_name: str = "Ada", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.bot_name = bot_name
        self.rules = [
            (("hello", "hi", "hey"), f"Hello! I am {bot_name}."),
            (("name",), f"My name is {bot_name}."),
            (("bye", "goodbye"), "Goodbye!"),
        ]

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame) and direction is FrameDirection.DOWNSTREAM:
            words = set(re.findall(r"[a-z']+", frame.text.lower()))
            answer = next((reply for keys, reply in self.rules if words & set(keys)), f"You said: {frame.text}")
            await self.push_frame(TextFrame(text=answer), direction)
            return
        await self.push_frame(frame, direction)
