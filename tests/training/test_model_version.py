"""ModelVersion's decision threshold for searching many faces at once."""

import pytest

from training.models import ModelVersion


def version(threshold=0.53, points=((1e-4, 0.46), (1e-3, 0.53))):
    return ModelVersion(name="v", threshold=threshold, metrics={"calibration_points": [list(p) for p in points]})


def test_one_template_uses_the_versions_own_threshold():
    assert version().threshold_for_gallery(1) == 0.53


def test_a_larger_gallery_needs_a_smaller_false_match_rate_per_comparison():
    # 1% over 100 templates is 1e-4 per comparison: the calibrated 0.46.
    assert version().threshold_for_gallery(100) == pytest.approx(0.46)
    # 1% over sqrt(10) * 10 templates is 10**-3.5: halfway (in log rate) between the two points.
    assert version().threshold_for_gallery(10 ** 1.5) == pytest.approx(0.495)


def test_it_never_goes_above_the_threshold_or_below_the_smallest_calibrated_one():
    assert version().threshold_for_gallery(2) == 0.53  # 5e-3 per comparison: capped at the threshold
    assert version().threshold_for_gallery(1_000_000) == pytest.approx(0.46)


def test_without_calibration_points_the_threshold_is_used_as_it_is():
    assert version(points=()).threshold_for_gallery(10_000) == 0.53
