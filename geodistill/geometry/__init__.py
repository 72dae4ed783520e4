"""Pure geometry on torch/numpy: frames, angles, panoramas, BEV mapping, FoV masks, sampling.

Nothing here imports anything else from geodistill. Conventions are in docs/conventions.md and in the
``Convention:`` block of every public docstring. Import the submodules directly, e.g.
``from geodistill.geometry.bev import project_to_bev``.
"""
