"""Background work: analyses in a few server threads (threads), trainings in worker processes under one
server-wide queue (training_queue, imported on its own: it builds on resnet_core.train)."""

from .threads import ANALYSIS_SLOTS, BackgroundJob, JobSnapshot, OneShotWorker, Progress

__all__ = ["ANALYSIS_SLOTS", "BackgroundJob", "JobSnapshot", "OneShotWorker", "Progress"]
