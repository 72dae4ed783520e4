"""Drawings for the app and the docs, as numpy images or HTML; never imports the models.

``images`` (conversions, colormaps), ``heatmap`` (probability overlays, teacher-student difference,
markers), ``panorama`` (FoV mask), ``bev`` (the panorama's bird's-eye view on the tile), ``panels`` (the
Explore view of a prediction), ``plots`` (error CDF, training curves), ``webmap`` (the offline Leaflet map),
``gt_check`` (the visual ground-truth check: GT on the tile, flat-world BEV against the aerial).
"""
