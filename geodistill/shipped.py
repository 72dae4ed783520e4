"""The shipped checkpoints by folder name (under :func:`geodistill.settings.checkpoints_dir`), in one place.

:data:`DEFAULT_LOCALIZER` is the model that ``predict``, ``evaluate``, ``bench``, the app, the README's snippet
and the golden check use when not told otherwise: the student with the best hard-tier validation error. Switching
the default is a change of that one line.

Every GeoDistill line follows one naming rule: a base folder (:data:`LINES`) and, with the line's prefix, its
teacher ``<prefix>geodistill_teacher`` and student ``<prefix>geodistill_student``. So every student's teacher and
every teacher's or student's base follow from the name (:func:`teacher_of`, :func:`base_of`).

Leaf module (imports nothing), so that ``--help`` texts can name the defaults without loading torch.
"""

from __future__ import annotations

DEFAULT_LOCALIZER = "gps_geodistill_student"  # the default of predict, evaluate, bench, the app and the README
DEFAULT_ORIENTATION = "orientation"          # the +-45 deg heading estimator
FULL_CIRCLE_ORIENTATION = "orientation_full"  # the 0-360 deg heading estimator (shipped only when trained)

STUDENT = "geodistill_student"
TEACHER = "geodistill_teacher"
# the GeoDistill lines: prefix of the teacher's and student's folders -> the base's folder
LINES = {"": "weak_baseline", "gps_": "gps_baseline", "ccvpe_": "ccvpe_base"}
WEAK_BASELINE = LINES[""]
GPS_BASELINE = LINES["gps_"]
CCVPE_BASE = LINES["ccvpe_"]
CCVPE_TEACHER = "ccvpe_" + TEACHER
CCVPE_STUDENT = "ccvpe_" + STUDENT

# what the training used of the camera positions, as every table labels it
WEAK, NOISY_GPS, SUPERVISED = "weak", "noisy GPS", "supervised"


def localizer_names() -> list[str]:
    """Every localizer folder the naming rule knows, line by line: base, teacher, student."""
    return [name for prefix, base in LINES.items() for name in (base, prefix + TEACHER, prefix + STUDENT)]


def students() -> list[str]:
    return [prefix + STUDENT for prefix in LINES]


def _line(name: str) -> str | None:
    """The prefix of the line ``name`` belongs to (a base, teacher or student folder), None for another name."""
    for prefix, base in LINES.items():
        if name in (base, prefix + TEACHER, prefix + STUDENT):
            return prefix
    return None


def role_of(name: str) -> str | None:
    """``base``, ``teacher`` or ``student`` for a folder of the naming rule, None for another name."""
    prefix = _line(name)
    if prefix is None:
        return None
    return "base" if name == LINES[prefix] else "teacher" if name == prefix + TEACHER else "student"


def teacher_of(name: str) -> str | None:
    """The teacher shipped beside a student (``gps_geodistill_student`` -> ``gps_geodistill_teacher``), else None."""
    prefix = _line(name)
    return prefix + TEACHER if prefix is not None and name == prefix + STUDENT else None


def base_of(name: str) -> str | None:
    """The base a teacher or student was distilled from (``gps_geodistill_student`` -> ``gps_baseline``); None for a
    base or an unknown name."""
    prefix = _line(name)
    return LINES[prefix] if prefix is not None and name != LINES[prefix] else None


def supervision(config: dict, base_config: dict | None = None) -> str | None:
    """What a checkpoint's training used of the camera positions, from its config (``config.json``'s ``config``):
    :data:`SUPERVISED` (pose labels: the CCVPE architecture or the supervised task), :data:`NOISY_GPS` (the
    noisy-GPS positional term, ``train.noisy_gps_weight`` > 0) or :data:`WEAK`. A GeoDistill checkpoint (task
    ``distill``) uses no label itself and inherits its base's (``base_config``); None when that is not given."""
    model, train = config.get("model") or {}, config.get("train") or {}
    if model.get("architecture") == "ccvpe" or train.get("task") == "supervised":
        return SUPERVISED
    if float(train.get("noisy_gps_weight") or 0.0) > 0.0:
        return NOISY_GPS
    if train.get("task") == "distill":
        return None if base_config is None else supervision(base_config)
    return WEAK
