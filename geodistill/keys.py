"""The data contract: canonical key names of samples, batches and predictions.

A *sample* is what a dataset's ``__getitem__`` returns (no batch axis); a *batch* is the same keys
stacked by :func:`geodistill.data.collate.collate_samples` (tensors gain a leading ``B`` axis, strings
and numbers become lists). Renaming a key is a breaking change.

Sample keys (shapes without the batch axis):

| key                | shape      | dtype   | meaning |
|--------------------|------------|---------|---------|
| ``pano``           | (3,Hp,Wp)  | float32 | equirectangular panorama in [0, 1], Wp = 2·Hp, centre line u = Wp/2 faces ``heading_gt`` |
| ``sat``            | (3,S,S)    | float32 | north-up satellite tile in [0, 1] |
| ``meters_per_pixel`` | ()       | float32 | metres per pixel of ``sat`` as fed (after resizing) |
| ``uv_gt``          | (2,)       | float32 | camera pixel (u, v) on ``sat``, continuous (pixel i covers [i, i+1)) |
| ``xy_gt``          | (2,)       | float32 | camera metres east/north of the tile centre |
| ``heading_gt``     | ()         | float32 | heading of the panorama centre line, degrees clockwise from north |
| ``latlon_sat``     | (2,)       | float64 | tile-centre latitude/longitude (NaN when not georeferenced) |
| ``latlon_gt``      | (2,)       | float64 | camera latitude/longitude (NaN when unknown) |
| ``fov_mask``       | (Wp,)      | bool    | visible panorama columns (all True for a full panorama) |
| ``camera_height_m``| ()         | float32 | camera height above the ground |
| ``has_gt``         | ()         | bool    | whether ``uv_gt``/``xy_gt`` hold a real label |
| ``city``           | str        |         | city (VIGOR) or "custom" |
| ``pano_name``      | str        |         | panorama file name |
| ``sat_name``       | str        |         | satellite file name |
| ``index``          | int        |         | index in the dataset |
| ``sat_file_side``  | int        |         | side in pixels of the tile file as read (``assemble_sample`` sets it; absent from hand-built samples): pixels of the file are ``uv · sat_file_side / S`` |
| ``sidecar``        | dict       |         | optional: the generator's per-panorama record (bundled samples that have one) |

Every key any module reads or writes is defined here, including the prediction keys below.
"""

from __future__ import annotations

PANO = "pano"
SAT = "sat"
METERS_PER_PIXEL = "meters_per_pixel"
UV_GT = "uv_gt"
XY_GT = "xy_gt"
HEADING_GT = "heading_gt"
LATLON_SAT = "latlon_sat"
LATLON_GT = "latlon_gt"
FOV_MASK = "fov_mask"
CAMERA_HEIGHT_M = "camera_height_m"
HAS_GT = "has_gt"
CITY = "city"
PANO_NAME = "pano_name"
SAT_NAME = "sat_name"
INDEX = "index"
SAT_FILE_SIDE = "sat_file_side"
SIDECAR = "sidecar"

SAMPLE_KEYS = (
    PANO, SAT, METERS_PER_PIXEL, UV_GT, XY_GT, HEADING_GT, LATLON_SAT, LATLON_GT, FOV_MASK,
    CAMERA_HEIGHT_M, HAS_GT, CITY, PANO_NAME, SAT_NAME, INDEX,
)

# Prediction keys (batched). Per-level score maps are stored under "scores/<level>".
SCORES = "scores"              # (B,H',W') cosine similarity of the finest used level, in [-1, 1]
LOG_PROBS = "log_probs"        # (B,H',W') log-softmax over space of SCORES / temperature
PROB = "prob"                  # (B,H',W') probabilities
UV_MAX = "uv_max"              # (B,2) argmax location on ``sat``, pixels
XY_MAX = "xy_max"              # (B,2) argmax location, metres east/north of the tile centre
UV_EXPECTATION = "uv_expectation"  # (B,2) soft-argmax location, pixels
XY_EXPECTATION = "xy_expectation"  # (B,2) soft-argmax location, metres
CONFIDENCE = "confidence"      # (B,) peak probability of PROB
ENTROPY = "entropy"            # (B,) entropy of PROB in nats (low = confident)
CELL_M = "cell_m"              # (B,) metres per score-map cell used for the position outputs
HEADING = "heading"            # (B,) predicted heading, degrees clockwise from north
HEADING_CONFIDENCE = "heading_confidence"  # (B,) concentration of the heading distribution at the location, [0, 1]
ORIENTATION_FIELD = "orientation_field"    # (B,2,H',W') CCVPE: heading vector (cos, sin) per location cell
HEADING_LOGITS = "heading_logits"  # (B,K) class logits of the orientation estimator
F_BEV = "f_bev"
F_SAT = "f_sat"
VALID_BEV = "valid_bev"

# Optional batch inputs of a model that estimates its own heading (CCVPE): the prior heading of each panorama
# (degrees clockwise from north) and its half range (degrees; 0 = known, 180 or absent = the full circle).
HEADING_PRIOR = "heading_prior_deg"  # (B,) float32
HEADING_RANGE = "heading_range_deg"  # (B,) float32

TEACHER_PREFIX = "teacher/"
STUDENT_PREFIX = "student/"
STUDENT_VIEW = STUDENT_PREFIX + FOV_MASK  # (B,Wp) bool: the panorama columns the distillation student saw


def level_key(name: str, level: int) -> str:
    """Key of a per-level entry, e.g. ``level_key("scores", 2) == "scores/2"``."""
    return f"{name}/{level}"
