import numpy as np

from geodistill.viz.plots import error_cdf, training_curves


FIRST_CURVE, SECOND_CURVE = (31, 119, 180), (255, 127, 14)  # matplotlib's first two line colours


def _pixels_of(image: np.ndarray, colour) -> tuple[np.ndarray, np.ndarray]:
    return np.nonzero(np.abs(image.astype(int) - np.array(colour)).sum(axis=-1) < 30)


def _where_it_reaches_100(image: np.ndarray, colour) -> float:
    """Leftmost x of the curve's top row: where the step reaches 100 % of the queries."""
    rows, cols = _pixels_of(image, colour)
    return float(cols[rows == rows.min()].min())


def test_error_cdf_draws_one_curve_per_model():
    image = error_cdf({"teacher": [0.5, 1.0, 4.0], "student": np.array([0.2, 0.4, 9.0, np.nan])})
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert image.shape[0] > 200 and image.shape[1] > 300
    # the teacher reaches 100 % at 4 m, the student at 9 m, on an axis from 0 to 10 m
    teacher, student = _where_it_reaches_100(image, FIRST_CURVE), _where_it_reaches_100(image, SECOND_CURVE)
    assert teacher < student
    single = error_cdf({"teacher": [0.5, 1.0, 4.0]})
    assert _pixels_of(single, FIRST_CURVE)[0].size and not _pixels_of(single, SECOND_CURVE)[0].size
    assert _where_it_reaches_100(single, FIRST_CURVE) == teacher


def test_error_cdf_of_nothing_still_renders():
    empty = error_cdf([])
    assert empty.shape[2] == 3 and not _pixels_of(empty, FIRST_CURVE)[0].size


def test_training_curves_from_events():
    events = [{"event": "start", "step": 0, "epoch": 0, "total_steps": 10}]
    events += [{"event": "step", "step": s, "epoch": s // 5, "lr": 1e-4, "loss/total": 1.0 / s, "loss/weak": 0.5 / s}
               for s in range(1, 11)]
    events += [{"event": "epoch", "step": 5 * e, "epoch": e, "val/student/mean_m": 5.0 - e, "val/teacher/mean_m": 4.0,
                "val/student/median_m": 3.0, "best": True} for e in (1, 2)]
    with_data = training_curves(events, title="run")
    empty = training_curves([])
    assert with_data.shape == empty.shape
    assert np.abs(with_data.astype(int) - empty.astype(int)).sum() > 0
