"""Pipelines: frames through processors (``PipelineWorker``) and the legacy runner module."""

from __future__ import annotations

from runnerconf.pipeline.worker import PipelineWorker, Processor

__all__ = ["PipelineWorker", "Processor"]
