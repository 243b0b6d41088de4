"""python manage.py calibrate_model: a threshold for a target false-match rate from real pairs."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def calibrate(*arguments) -> str:
    output = StringIO()
    call_command("calibrate_model", *arguments, stdout=output)
    return output.getvalue()


def test_it_saves_the_largest_threshold_that_keeps_false_matches_under_the_target(
    base_model_version, lfw_csv, faces_dir
):
    # Every two of the CSV's 20 photos of 15 people: 5 genuine pairs, 185 impostor pairs.
    output = calibrate("--pairs", str(lfw_csv), "--images", str(faces_dir / "lfw"), "--all-pairs",
                       "--far", "1e-2", "--save")
    assert "5 genuine and 185 impostor pairs" in output
    assert "0 pairs not compared" in output
    base_model_version.refresh_from_db()
    calibration = base_model_version.metrics["calibration"]
    assert calibration["far"] <= 1e-2
    assert calibration["impostor_pairs"] == 185
    # 185 impostors at 1e-2 allow one false match: the threshold sits just under the second
    # nearest impostor distance; the version keeps it (rounded) and says how it was made.
    assert base_model_version.threshold == pytest.approx(calibration["threshold"], abs=1e-4)
    assert "FAR 0.01" in base_model_version.threshold_source


def test_it_refuses_a_rate_the_pairs_cannot_measure_and_keeps_the_threshold(
    base_model_version, lfw_csv, faces_dir
):
    before = base_model_version.threshold
    with pytest.raises(CommandError, match="Too few impostor pairs.*need at least 1000"):
        calibrate("--pairs", str(lfw_csv), "--images", str(faces_dir / "lfw"), "--far", "1e-3", "--save")
    base_model_version.refresh_from_db()
    assert base_model_version.threshold == before
