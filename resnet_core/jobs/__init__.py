"""Trainings in worker processes under one server-wide queue (training_queue), kept on disk (queue_store).

It sits above resnet_core.train (it starts `python -m resnet_core.train` workers and follows their folders) and
resnet_core.serving (owners, limits); analyses' threads are resnet_core.background, below both."""
