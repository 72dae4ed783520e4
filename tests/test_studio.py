"""geodistill.studio: the shipped names, heading modes, the model cache and the teacher/student pairs."""

from __future__ import annotations

import pytest

from geodistill import studio
from geodistill.errors import CheckpointError
from geodistill.evaluation import ORIENTATION_SETTINGS


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(folder))
    return folder


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
    assert studio.shipped_checkpoint(studio.DEFAULT_LOCALIZER) == shipped / "geodistill_student"


def test_teacher_and_student_of_each_kind_of_choice(shipped, tmp_path, tiny_checkpoint):
    cache = studio.ModelCache(device="cpu")
    tiny_checkpoint(shipped / studio.DEFAULT_LOCALIZER)
    teacher, student = studio.teacher_and_student("shipped:geodistill_student", "aligned", cache)
    assert teacher is student and student.role == "weak"  # no shipped teacher: the student is its own reference
    assert studio.teacher_and_student("shipped:geodistill_student", "aligned", cache)[1] is student  # cached
    assert len(cache) == 1
    tiny_checkpoint(shipped / studio.DEFAULT_TEACHER, task="distill")
    teacher, student = studio.teacher_and_student("shipped:geodistill_student", "aligned", cache)
    assert teacher is not student and teacher.source == str(shipped / "geodistill_teacher")

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
    _, aligned = studio.teacher_and_student("shipped:geodistill_student", "aligned", cache)
    _, estimating = studio.teacher_and_student("shipped:geodistill_student", "45", cache)
    assert aligned.orientation is None
    assert estimating.orientation is not None and estimating.orientation_source == str(shipped / "orientation")
