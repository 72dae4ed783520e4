"""Localizer inference: Prediction fields, pixel/metre/latlon consistency, resizing, FoV, 3-DoF and loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from geodistill import keys
from geodistill.checkpoint import save_checkpoint
from geodistill.config import config_from_dict
from geodistill.data.collate import assemble_sample
from geodistill.errors import CheckpointError
from geodistill.evaluation import check_orientation_support
from geodistill.geometry.frames import xy_to_latlon, xy_to_uv
from geodistill.geometry.panorama import roll_panorama
from geodistill.inference import Localizer, TileCentreBaseline
from geodistill.models.prediction import predict_from_scores

TINY = {
    "model": {"backbone": "tiny_cnn", "pretrained": False, "allow_random_init": True, "decoder_width": 16,
              "level_channels": [16, 8, 4]},
    "data": {"pano_height": 32, "sat_size": 64},
    "orientation": {"backbone": "tiny_cnn", "pretrained": False, "allow_random_init": True, "input_size": 64,
                    "hidden": [16]},
}
LATLON_SAT = (41.8779, -87.6894)


def tiny_config(**orientation):
    config = config_from_dict(TINY)
    for key, value in orientation.items():
        setattr(config.orientation, key, value)
    return config


@pytest.fixture(scope="module")
def localizer():
    torch.manual_seed(0)
    return Localizer.from_config(tiny_config())


def make_sample(pano_height=48, sat_size=96, mpp=0.75, heading=0.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    pano = torch.rand(3, pano_height, 2 * pano_height, generator=generator)
    sat = torch.rand(3, sat_size, sat_size, generator=generator)
    xy_gt = np.array([3.0, -2.0])
    uv_gt = xy_to_uv(xy_gt, sat_size, mpp)
    return assemble_sample(pano, sat, mpp, uv_gt, xy_gt, LATLON_SAT, None, heading_deg=heading, city="Chicago")


def test_prediction_fields_are_consistent(localizer):
    sample = make_sample()
    prediction = localizer.predict(sample)
    assert prediction.uv.shape == (2,) and prediction.xy_m.shape == (2,)
    assert np.allclose(prediction.uv, xy_to_uv(prediction.xy_m, 96, 0.75), atol=1e-4)
    assert prediction.latlon.dtype == np.float64
    assert np.allclose(prediction.latlon, xy_to_latlon(prediction.xy_m, np.array(LATLON_SAT)), atol=1e-12)
    assert prediction.error_m == pytest.approx(float(np.hypot(*(prediction.xy_m - np.array([3.0, -2.0])))), abs=1e-5)
    assert np.allclose(prediction.uv_gt, xy_to_uv(np.array([3.0, -2.0]), 96, 0.75))
    assert prediction.heading_deg is None and prediction.meters_per_pixel == pytest.approx(0.75)
    assert prediction.fov_mask.shape == (96,) and prediction.fov_mask.all()
    assert prediction.confidence is None and 0.0 < prediction.peak_probability <= 1.0  # no calibration stored
    assert set(prediction.calibration_features) >= {"logit_peak_mass", "entropy_norm", "fov_fraction", "peak_score"}
    heatmap = prediction.prob_on_tile
    assert heatmap.shape == (96, 96) and heatmap.dtype == np.float32 and heatmap.min() >= 0.0
    assert heatmap.sum() == pytest.approx(1.0, abs=0.05)
    row, col = np.unravel_index(heatmap.argmax(), heatmap.shape)
    # the heatmap peak lies under the predicted pixel (bilinear between cell centres: within a pixel)
    assert abs(col + 0.5 - prediction.uv[0]) <= 1.0 and abs(row + 0.5 - prediction.uv[1]) <= 1.0
    summary = prediction.to_dict()
    assert summary["lat"] == pytest.approx(prediction.latlon[0]) and summary["error_m"] == prediction.error_m


def test_no_georeference_and_no_ground_truth(localizer):
    sample = assemble_sample(torch.rand(3, 32, 64), torch.rand(3, 64, 64), 1.0, None, None, None, None)
    prediction = localizer.predict(sample, with_heatmap=False)
    assert prediction.latlon is None and prediction.error_m is None and prediction.uv_gt is None
    assert prediction.prob_on_tile is None


class SpyModel(nn.Module):
    """Records what the localizer was fed and returns a score map with a known peak."""

    def __init__(self, peak_rowcol=(2, 7), size=9, cell_m=1.5):
        super().__init__()
        self.peak, self.size, self.cell_m = peak_rowcol, size, cell_m
        self.batches = []

    def forward(self, batch, fov_mask=None):
        self.batches.append((batch, fov_mask))
        scores = torch.zeros(batch[keys.SAT].shape[0], self.size, self.size)
        scores[:, self.peak[0], self.peak[1]] = 1.0
        cell = torch.full((scores.shape[0],), self.cell_m)
        out = predict_from_scores(scores, cell, batch[keys.METERS_PER_PIXEL], batch[keys.SAT].shape[-1], 0.06)
        out["cell_m"] = cell
        return out


def spy_localizer(**kwargs):
    return Localizer(SpyModel(), tiny_config(), **kwargs)


def test_inputs_are_resized_and_outputs_mapped_back_to_the_given_tile():
    localizer = spy_localizer()
    prediction = localizer.predict(make_sample(pano_height=50, sat_size=128, mpp=0.5))
    batch, fov_mask = localizer.model.batches[-1]
    assert batch[keys.PANO].shape == (1, 3, 32, 64) and batch[keys.SAT].shape == (1, 3, 64, 64)
    assert float(batch[keys.METERS_PER_PIXEL][0]) == pytest.approx(1.0)  # 0.5 m/px at 128 px -> 1 m/px at 64
    assert fov_mask is None
    # peak at (row 2, col 7) of a 9x9 map with 1.5 m cells: east (7-4)*1.5 = 4.5 m, north -(2-4)*1.5 = 3 m
    assert np.allclose(prediction.xy_m, [4.5, 3.0])
    assert np.allclose(prediction.uv, [64 + 4.5 / 0.5, 64 - 3.0 / 0.5])
    row, col = np.unravel_index(prediction.prob_on_tile.argmax(), prediction.prob_on_tile.shape)
    assert abs(col + 0.5 - prediction.uv[0]) <= 1.5 and abs(row + 0.5 - prediction.uv[1]) <= 1.5


def test_fov_query_zeroes_the_image_and_passes_the_mask():
    localizer = spy_localizer()
    sample = make_sample(pano_height=32, sat_size=64)
    prediction = localizer.predict(sample, fov_deg=90.0, fov_center_deg=90.0)
    batch, fov_mask = localizer.model.batches[-1]
    assert fov_mask is not None and fov_mask.shape == (1, 64)
    assert int(fov_mask.sum()) == 16 and bool(fov_mask[0, 40:56].all())  # east is at 3W/4: columns 40..55
    assert float(batch[keys.PANO][0][:, :, ~fov_mask[0]].abs().sum()) == 0.0
    assert torch.allclose(batch[keys.PANO][0][:, :, fov_mask[0]], sample[keys.PANO][:, :, fov_mask[0]])
    assert prediction.fov_mask.sum() == 16


def test_known_heading_is_rolled_back_before_localizing(localizer):
    aligned = make_sample(pano_height=32, sat_size=64)
    heading = 360.0 / 64 * 8  # a whole number of columns: the roll is exact
    turned = dict(aligned, **{keys.PANO: roll_panorama(aligned[keys.PANO], heading),
                              keys.HEADING_GT: torch.tensor(heading)})
    assert not torch.allclose(turned[keys.PANO], aligned[keys.PANO])
    first, second = localizer.predict(aligned), localizer.predict(turned)
    assert np.allclose(first.scores, second.scores, atol=1e-5)
    assert np.allclose(first.xy_m, second.xy_m)


class FixedHeading(nn.Module):
    def __init__(self, heading):
        super().__init__()
        self.heading = heading

    def forward(self, data):
        return {keys.HEADING: torch.full((data[keys.PANO].shape[0],), self.heading)}


def test_orientation_model_heading_is_reported_and_used(localizer):
    aligned = make_sample(pano_height=32, sat_size=64)
    heading = 360.0 / 64 * 5
    turned = dict(aligned, **{keys.PANO: roll_panorama(aligned[keys.PANO], heading),
                              keys.HEADING_GT: torch.tensor(0.0)})  # the estimator, not the label, is used
    three_dof = Localizer(localizer.model, localizer.config, orientation=FixedHeading(heading),
                          orientation_config=tiny_config().orientation)
    prediction = three_dof.predict(turned)
    assert prediction.heading_deg == pytest.approx(heading)
    assert np.allclose(prediction.scores, localizer.predict(aligned).scores, atol=1e-5)


def test_estimate_heading_is_explicit(localizer):
    aligned = make_sample(pano_height=32, sat_size=64)
    heading = 360.0 / 64 * 5
    turned = dict(aligned, **{keys.PANO: roll_panorama(aligned[keys.PANO], heading),
                              keys.HEADING_GT: torch.tensor(heading)})
    three_dof = Localizer(localizer.model, localizer.config, orientation=FixedHeading(heading + 30.0),
                          orientation_config=tiny_config().orientation)
    known = three_dof.predict(turned, estimate_heading=False)  # the label, not the (wrong) estimator, is used
    assert known.heading_deg is None
    assert np.allclose(known.scores, localizer.predict(aligned).scores, atol=1e-5)
    estimated = three_dof.predict(turned, estimate_heading=True)
    assert estimated.heading_deg == pytest.approx(heading + 30.0)
    assert three_dof.predict(turned).heading_deg == estimated.heading_deg  # default: estimate when a model is loaded
    assert not np.allclose(estimated.scores, known.scores, atol=1e-3)
    assert localizer.predict(turned).heading_deg is None  # default without a model: the label
    with pytest.raises(CheckpointError, match="orientation model"):
        localizer.predict(turned, estimate_heading=True)
    clamped = three_dof.predict(turned, heading_prior_deg=heading, heading_range_deg=10.0)
    assert clamped.heading_deg == pytest.approx(heading + 10.0)  # the estimate is kept inside the prior's window
    assert estimated.heading_confidence is None  # this stand-in estimator gives no class logits


def test_per_sample_camera_height_reaches_the_localizer(localizer):
    import copy

    sample = make_sample(pano_height=32, sat_size=64)
    tall = dict(sample, **{keys.CAMERA_HEIGHT_M: torch.tensor(3.5)})
    config = copy.deepcopy(localizer.config)
    config.model.camera_height_m = 3.5
    by_default = Localizer(localizer.model, config)  # the same network with 3.5 m as its default height
    unlabelled = {key: value for key, value in sample.items() if key != keys.CAMERA_HEIGHT_M}
    expected = by_default.predict(unlabelled).scores
    assert np.allclose(localizer.predict(tall).scores, expected, atol=1e-6)
    assert not np.allclose(localizer.predict(sample).scores, expected, atol=1e-3)


def test_predict_batch_matches_single_predictions(localizer):
    samples = [make_sample(seed=1), make_sample(pano_height=32, sat_size=64, seed=2)]
    batch = localizer.predict_batch(samples, fov_deg=[None, 180.0], fov_center_deg=[0.0, 45.0])
    singles = [localizer.predict(samples[0]), localizer.predict(samples[1], fov_deg=180.0, fov_center_deg=45.0)]
    for together, alone in zip(batch, singles):
        assert np.allclose(together.uv, alone.uv) and np.allclose(together.scores, alone.scores, atol=1e-5)


def test_tile_centre_baseline():
    prediction = TileCentreBaseline().predict(make_sample(sat_size=96))
    assert np.allclose(prediction.uv, [48, 48]) and np.allclose(prediction.xy_m, [0, 0])
    for size in (96, 95):  # a probability map centred on S/2 (continuous pixels: pixel i covers [i, i+1))
        heatmap = TileCentreBaseline().predict(make_sample(sat_size=size)).prob_on_tile
        assert heatmap.shape == (size, size) and heatmap.sum() == pytest.approx(1.0)
        centres = np.arange(size) + 0.5
        assert (heatmap.sum(0) * centres).sum() == pytest.approx(size / 2) == (heatmap.sum(1) * centres).sum()
    assert prediction.error_m == pytest.approx(np.hypot(3.0, 2.0))
    assert np.allclose(prediction.latlon, LATLON_SAT)


def _save(path, config, state_dicts, task, role, **meta):
    return save_checkpoint(path, config, state_dicts, {"task": task, "role": role, **meta})


def test_from_checkpoint_roles_and_orientation(tmp_path, localizer):
    from geodistill.models.localizer import LocalizerNet
    from geodistill.models.orientation import OrientationEstimator

    config = localizer.config
    run = tmp_path / "run"
    _save(run / "best", config, {"model": localizer.model.state_dict()}, "weak", "weak")
    loaded = Localizer.from_checkpoint(run)  # a run folder means its best/
    sample = make_sample()
    assert np.allclose(loaded.predict(sample).scores, localizer.predict(sample).scores, atol=1e-6)
    assert loaded.role == "weak" and loaded.source.endswith("best")
    with pytest.raises(CheckpointError):
        Localizer.from_checkpoint(run, role="teacher")

    torch.manual_seed(1)
    teacher = LocalizerNet(config.model)
    _save(tmp_path / "distill", config, {"teacher": teacher.state_dict(), "student": localizer.model.state_dict()},
          "distill", "student", deploy="student")
    student = Localizer.from_checkpoint(tmp_path / "distill")
    assert student.role == "student"
    assert np.allclose(student.predict(sample).scores, localizer.predict(sample).scores, atol=1e-6)
    assert Localizer.from_checkpoint(tmp_path / "distill", role="teacher").role == "teacher"

    orientation_config = tiny_config()
    orientation = OrientationEstimator(orientation_config.orientation)
    _save(tmp_path / "ori", orientation_config, {"model": orientation.state_dict()}, "orientation", "orientation")
    with pytest.raises(CheckpointError, match="orientation"):
        Localizer.from_checkpoint(tmp_path / "ori")
    with pytest.raises(CheckpointError, match="not an orientation"):
        Localizer.from_checkpoint(run, orientation_checkpoint=run)
    three_dof = Localizer.from_checkpoint(run, orientation_checkpoint=tmp_path / "ori")
    assert three_dof.orientation_range_deg == 45.0
    heading = three_dof.predict(sample).heading_deg
    assert heading is not None and (0.0 <= heading < 45.0 or 315.0 <= heading < 360.0)
    check_orientation_support(three_dof, "45")
    with pytest.raises(CheckpointError, match="full circle"):
        check_orientation_support(three_dof, "unknown")


def test_damaged_checkpoint_is_a_clear_error(tmp_path, localizer):
    folder = _save(tmp_path / "ck", localizer.config, {"model": localizer.model.state_dict()}, "weak", "weak")
    (folder / "weights.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="weights.safetensors"):
        Localizer.from_checkpoint(folder)
    other = tiny_config()
    other.model.decoder_width = 24
    _save(tmp_path / "other", other, {"model": localizer.model.state_dict()}, "weak", "weak")
    with pytest.raises(CheckpointError, match="do not fit"):
        Localizer.from_checkpoint(tmp_path / "other")


class PeakedHeading(nn.Module):
    """A +-45 deg estimator whose class probabilities are 0.5 at 10 deg, 0.3 at 13 deg and 0.2 at -40 deg."""

    def forward(self, data):
        prob = torch.full((90,), 1e-12)
        prob[55], prob[58], prob[5] = 0.5, 0.3, 0.2  # class k is the 1-deg bin starting at k - 45
        logits = prob.log().expand(data[keys.PANO].shape[0], -1)
        return {keys.HEADING: torch.full((logits.shape[0],), 10.5), keys.HEADING_LOGITS: logits}


def test_orientation_model_heading_confidence_is_its_mass_within_5_degrees(localizer):
    three_dof = Localizer(localizer.model, localizer.config, orientation=PeakedHeading(),
                          orientation_config=tiny_config().orientation)
    prediction = three_dof.predict(make_sample(pano_height=32, sat_size=64), estimate_heading=True)
    assert prediction.heading_deg == pytest.approx(10.5)
    assert prediction.heading_confidence == pytest.approx(0.8, abs=1e-6)
