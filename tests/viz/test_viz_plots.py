import numpy as np

from geodistill.viz.plots import error_cdf, training_curves


def test_error_cdf_draws_one_curve_per_model():
    image = error_cdf({"teacher": [0.5, 1.0, 4.0], "student": np.array([0.2, 0.4, 9.0, np.nan])})
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert (image < 200).any()  # something is drawn on the white figure


def test_error_cdf_of_nothing_still_renders():
    assert error_cdf([]).shape[2] == 3


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
