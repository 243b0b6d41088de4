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


def with_open_set(margin=0.08, points=((10, 0.52), (100, 0.50), (1000, 0.48))):
    calibrated = version(points=((1e-6, 0.40), (1e-5, 0.42), (1e-4, 0.46), (1e-3, 0.53)))
    calibrated.metrics["open_set"] = {"margin": margin, "points": [list(point) for point in points]}
    return calibrated


def test_with_its_margin_rule_a_search_uses_the_open_set_points_in_log_gallery_size():
    calibrated = with_open_set()

    assert calibrated.open_set_margin == 0.08
    assert calibrated.threshold_for_gallery(100, margin=0.08) == pytest.approx(0.50)
    assert calibrated.threshold_for_gallery(10 ** 1.5, margin=0.08) == pytest.approx(0.51)
    assert calibrated.threshold_for_gallery(5, margin=0.08) == pytest.approx(0.52)  # below: the first point


def test_beyond_the_largest_calibrated_gallery_the_threshold_tightens_as_the_bound_does():
    calibrated = with_open_set()
    # Without the margin, 1% over 1,000 templates is 1e-5 per comparison (0.42) and over 10,000 it
    # is 1e-6 (0.40): 0.02 tighter, so 0.48 becomes 0.46.
    assert calibrated.threshold_for_gallery(10_000, margin=0.08) == pytest.approx(0.46)


def test_a_search_without_the_calibrated_margin_falls_back_to_the_pairwise_bound():
    calibrated = with_open_set()

    assert calibrated.threshold_for_gallery(1000) == pytest.approx(0.42)  # duplicate warnings
    assert calibrated.threshold_for_gallery(1000, margin=0.05) == pytest.approx(0.42)  # another margin
    assert version().open_set_margin is None


def test_open_set_thresholds_never_exceed_the_one_to_one_threshold():
    assert with_open_set(points=((10, 0.60),)).threshold_for_gallery(10, margin=0.08) == 0.53
