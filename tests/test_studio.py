"""geodistill.studio: the shipped names, heading modes, the model cache and the teacher/student pairs."""

from __future__ import annotations

import numpy as np
import pytest

from geodistill import shipped as shipped_names
from geodistill import studio
from geodistill.errors import CheckpointError
from geodistill.evaluation import ORIENTATION_SETTINGS


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(folder))
    return folder


DEFAULT = studio.shipped_choice(studio.DEFAULT_LOCALIZER)


def _fake_checkpoint(folder):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")


def test_every_evaluation_setting_has_a_heading_mode():
    assert set(studio.HEADING_OF_SETTING) == set(ORIENTATION_SETTINGS)
    assert set(studio.HEADING_OF_SETTING.values()) <= set(studio.HEADING_MODES)
    assert studio.HEADING_OF_SETTING["aligned"] == "aligned"


def test_heading_modes_pick_their_orientation_model(shipped):
    assert studio.heading_modes() == ["45", "aligned"]  # no full-circle model shipped
    assert studio.orientation_checkpoint("aligned") is None
    assert studio.orientation_checkpoint("45") is None  # nothing shipped: the panorama is taken as north-aligned
    with pytest.raises(studio.StudioError, match="no full-circle orientation model"):
        studio.orientation_checkpoint("full")
    with pytest.raises(studio.StudioError, match="unknown heading mode 'sideways'"):
        studio.orientation_checkpoint("sideways")
    _fake_checkpoint(shipped / studio.DEFAULT_ORIENTATION)
    _fake_checkpoint(shipped / studio.FULL_CIRCLE_ORIENTATION)
    assert studio.orientation_checkpoint("45") == str(shipped / "orientation")
    assert studio.orientation_checkpoint("full") == str(shipped / "orientation_full")
    assert studio.orientation_checkpoint("aligned") is None  # aligned never estimates, even with a model shipped
    assert studio.heading_modes() == ["45", "full", "aligned"]


def test_shipped_checkpoint_needs_a_config(shipped):
    assert studio.shipped_checkpoint(studio.DEFAULT_LOCALIZER) is None
    (shipped / studio.DEFAULT_LOCALIZER).mkdir()
    assert studio.shipped_checkpoint(studio.DEFAULT_LOCALIZER) is None  # an empty folder is no checkpoint
    (shipped / studio.DEFAULT_LOCALIZER / "config.json").write_text("{}")
    assert studio.shipped_checkpoint(studio.DEFAULT_LOCALIZER) == shipped / studio.DEFAULT_LOCALIZER


def test_teacher_and_student_of_each_kind_of_choice(shipped, tmp_path, tiny_checkpoint):
    cache = studio.ModelCache(device="cpu")
    tiny_checkpoint(shipped / studio.DEFAULT_LOCALIZER)
    teacher, student = studio.teacher_and_student(DEFAULT, "aligned", cache)
    assert teacher is student and student.role == "weak"  # no shipped teacher: the student is its own reference
    assert studio.teacher_and_student(DEFAULT, "aligned", cache)[1] is student  # cached
    assert len(cache) == 1
    tiny_checkpoint(shipped / studio.DEFAULT_TEACHER, task="distill")
    teacher, student = studio.teacher_and_student(DEFAULT, "aligned", cache)
    assert teacher is not student and teacher.source == str(shipped / studio.DEFAULT_TEACHER)

    run = tmp_path / "runs" / "distilled"
    tiny_checkpoint(run / "best", task="distill")
    teacher, student = studio.teacher_and_student(str(run), "aligned", cache)
    assert (teacher.role, student.role) == ("teacher", "student")
    untrained, same = studio.teacher_and_student(studio.UNTRAINED, "45", cache)
    assert untrained is same and untrained.role == "untrained" and untrained.orientation is None
    assert untrained.pano_height == studio.untrained_config().data.pano_height

    with pytest.raises(studio.StudioError, match="no shipped checkpoint 'nothing'"):
        studio.teacher_and_student("shipped:nothing", "aligned", cache)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        studio.teacher_and_student(str(tmp_path / "missing"), "aligned", cache)


def test_the_heading_mode_decides_whether_an_orientation_model_is_attached(shipped, tmp_path, tiny_checkpoint):
    from geodistill.checkpoint import save_checkpoint
    from geodistill.config import load_config
    from geodistill.models.orientation import OrientationEstimator

    config = load_config(studio.settings.REPO_ROOT / "training" / "configs" / "tiny.yaml", ["train.task=orientation"])
    save_checkpoint(shipped / studio.DEFAULT_ORIENTATION, config,
                    {"model": OrientationEstimator(config.orientation).state_dict()},
                    {"task": "orientation", "role": "orientation"})
    tiny_checkpoint(shipped / studio.DEFAULT_LOCALIZER)
    cache = studio.ModelCache(device="cpu")
    _, aligned = studio.teacher_and_student(DEFAULT, "aligned", cache)
    _, estimating = studio.teacher_and_student(DEFAULT, "45", cache)
    assert aligned.orientation is None
    assert estimating.orientation is not None and estimating.orientation_source == str(shipped / "orientation")


def test_the_naming_rule_knows_every_line_teacher_base_and_supervision():
    assert studio.DEFAULT_LOCALIZER in shipped_names.students() and studio.DEFAULT_TEACHER == \
        shipped_names.teacher_of(studio.DEFAULT_LOCALIZER)
    assert studio.TEACHER_OF == {"geodistill_student": "geodistill_teacher",
                                 "gps_geodistill_student": "gps_geodistill_teacher",
                                 "ccvpe_geodistill_student": "ccvpe_geodistill_teacher"}
    names = ("geodistill_teacher", "gps_geodistill_student", "ccvpe_geodistill_student", "gps_baseline", "orientation")
    assert [shipped_names.base_of(name) for name in names] == ["weak_baseline", "gps_baseline", "ccvpe_base", None, None]
    assert [shipped_names.role_of(name) for name in ("ccvpe_base", "gps_geodistill_teacher", "geodistill_student",
                                                     "orientation")] == ["base", "teacher", "student", None]
    assert shipped_names.teacher_of("gps_baseline") is None and shipped_names.teacher_of("my_student") is None
    assert len(shipped_names.localizer_names()) == 9 and shipped_names.localizer_names()[:3] == [
        "weak_baseline", "geodistill_teacher", "geodistill_student"]
    assert studio.SHIPPED_LOCALIZERS[0] == studio.DEFAULT_LOCALIZER
    assert len(set(studio.SHIPPED_LOCALIZERS)) == len(studio.SHIPPED_LOCALIZERS) == 6  # 3 students, 3 bases

    weak = {"train": {"task": "weak", "noisy_gps_weight": 0.0}, "model": {"architecture": "g2sweakly"}}
    gps = {"train": {"task": "weak", "noisy_gps_weight": 1.0}, "model": {}}
    distill = {"train": {"task": "distill"}, "model": {}}
    supervision = shipped_names.supervision
    assert supervision(weak) == shipped_names.WEAK and supervision({"train": {"task": "weak"}}) == "weak"
    assert supervision(gps) == shipped_names.NOISY_GPS == "noisy GPS"
    assert supervision({"train": {"task": "supervised"}, "model": {"architecture": "ccvpe"}}) == "supervised"
    assert supervision({"train": {"task": "distill"}, "model": {"architecture": "ccvpe"}}) == "supervised"
    assert supervision(distill) is None  # GeoDistill uses no label itself: its base's supervision
    assert supervision(distill, gps) == "noisy GPS" and supervision(distill, weak) == "weak"


def _ccvpe_checkpoint(folder):
    import torch

    from geodistill.checkpoint import save_checkpoint
    from geodistill.config import config_from_dict
    from geodistill.models.ccvpe import CcvpeNet

    config = config_from_dict({
        "model": {"architecture": "ccvpe", "backbone": "tiny_cnn", "pretrained": False, "allow_random_init": True,
                  "ccvpe": {"azimuth_bins": 4, "match_strides": [16, 8], "descriptor_channels": [8, 8],
                            "output_stride": 4}},
        "data": {"pano_height": 32, "sat_size": 64}, "train": {"task": "supervised"}})
    torch.manual_seed(0)
    save_checkpoint(folder, config, {"model": CcvpeNet(config.model).state_dict()},
                    {"task": "supervised", "role": "supervised"})


def test_the_default_localizer_takes_an_orientation_model_only_where_it_needs_one(shipped, monkeypatch,
                                                                                   tiny_checkpoint):
    from geodistill.data.samples import list_samples, load_sample

    with pytest.raises(studio.StudioError, match=f"no default model at .*{studio.DEFAULT_LOCALIZER}.*--checkpoint"):
        studio.default_localizer()
    tiny_checkpoint(shipped / studio.DEFAULT_LOCALIZER)
    assert studio.default_checkpoint() == shipped / studio.DEFAULT_LOCALIZER
    plain = studio.default_localizer()
    assert plain.source == str(shipped / studio.DEFAULT_LOCALIZER) and plain.orientation is None  # none shipped

    # a CCVPE default (one line in geodistill/shipped.py) estimates its own heading: no orientation model needed
    monkeypatch.setattr(studio, "DEFAULT_LOCALIZER", shipped_names.CCVPE_STUDENT)
    _ccvpe_checkpoint(shipped / shipped_names.CCVPE_STUDENT)
    own = studio.default_localizer()
    assert own.estimates_own_heading and own.orientation is None and own.can_estimate_heading
    prediction = own.predict(load_sample(list_samples()[0]), with_heatmap=False)
    assert prediction.heading_deg is not None


def test_heading_modes_follow_the_model_choice(shipped, tmp_path, tiny_checkpoint):
    """A CCVPE model estimates its own heading: it offers the full circle with no orientation model shipped."""
    tiny_checkpoint(shipped / studio.DEFAULT_LOCALIZER)
    ccvpe_run = tmp_path / "runs" / "ccvpe"
    tiny_checkpoint(ccvpe_run / "best", task="supervised")
    assert studio.estimates_own_heading(str(ccvpe_run))
    assert not studio.estimates_own_heading("shipped:geodistill_student")
    assert not studio.estimates_own_heading(studio.UNTRAINED) and not studio.estimates_own_heading(None)
    assert not studio.estimates_own_heading(str(tmp_path / "missing"))  # unreadable: no extra choices
    assert studio.heading_modes(str(ccvpe_run)) == ["45", "full", "aligned"]
    assert studio.heading_modes("shipped:geodistill_student") == ["45", "aligned"]
    assert studio.heading_modes(studio.UNTRAINED) == ["45", "aligned"]
    assert studio.orientation_settings(str(ccvpe_run)) == ["aligned", "45", "unknown"]
    assert studio.orientation_settings("shipped:geodistill_student") == ["aligned", "45"]
    assert studio.orientation_checkpoint("full", str(ccvpe_run)) is None  # its own heading, no estimator needed
    with pytest.raises(studio.StudioError, match="no full-circle orientation model"):
        studio.orientation_checkpoint("full", "shipped:geodistill_student")
    cache = studio.ModelCache(device="cpu")
    teacher, student = studio.teacher_and_student(str(ccvpe_run), "full", cache)
    assert teacher is student and student.estimates_own_heading and student.orientation is None
    _fake_checkpoint(shipped / studio.FULL_CIRCLE_ORIENTATION)
    assert studio.heading_modes("shipped:geodistill_student") == ["45", "full", "aligned"]


def test_heading_arguments_are_the_evaluation_protocols(shipped, tmp_path, tiny_checkpoint):
    assert studio.heading_arguments("aligned") == {"estimate_heading": False}
    assert studio.heading_arguments("45") == {"estimate_heading": None, "heading_prior_deg": 0.0,
                                              "heading_range_deg": 45.0}
    assert studio.heading_arguments("full") == {"estimate_heading": None}
    with pytest.raises(studio.StudioError, match="unknown heading mode"):
        studio.heading_arguments("sideways")
    import torch

    from geodistill import keys

    run = tmp_path / "ccvpe"
    tiny_checkpoint(run / "best", task="supervised")
    _, model = studio.teacher_and_student(str(run), "full", studio.ModelCache(device="cpu"))
    generator = torch.Generator().manual_seed(0)
    sample = {keys.PANO: torch.rand(3, 64, 128, generator=generator), keys.SAT: torch.rand(3, 128, 128, generator=generator),
              keys.METERS_PER_PIXEL: torch.tensor(0.5)}
    assert model.predict(sample, **studio.heading_arguments("aligned")).heading_deg is None
    within = model.predict(sample, **studio.heading_arguments("45")).heading_deg
    assert within is not None and min(within, 360.0 - within) <= 45.0 + 1e-6
    assert model.predict(sample, **studio.heading_arguments("full")).heading_deg is not None
    full = model.predict(sample, **studio.heading_arguments("full"))
    field = full.orientation_field
    assert field.shape == (*full.scores.shape, 4) and field.dtype == np.float32
    assert 0 < field[..., 0].min() < field[..., 0].max() < 128 and 0 < field[..., 1].min() < field[..., 1].max() < 128
    nearest = np.unravel_index(np.hypot(*(field[..., :2] - full.uv).transpose(2, 0, 1)).argmin(), field.shape[:2])
    at_peak = field[nearest][2]
    assert min(abs(at_peak - full.heading_deg), 360 - abs(at_peak - full.heading_deg)) < 1e-3  # read there
