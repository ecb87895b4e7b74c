"""Asyncio helpers (pipecat keeps its task manager at the same path)."""
