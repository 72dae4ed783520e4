"""The training engine: loop, tasks, run folders, events, schedules, data loaders and DDP.

Entry point: :func:`geodistill.engine.loop.train` (``python -m geodistill train`` calls it). Import the
submodules directly; this package imports nothing heavy.
"""
