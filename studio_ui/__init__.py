"""The tabs of GeoDistill Studio (``app.py``): one module per tab, each a layout builder plus its own events.

Each ``build_*`` function lays out its tab inside the ``gr.Blocks`` being built and returns a dataclass of its
components; events within a tab are wired there, events between tabs in :func:`app.build_demo`. The handlers
live in ``app_handlers.py`` (the My area tab's in ``my_area_handlers.py``). Nothing in the ``geodistill`` package
imports this one.
"""
