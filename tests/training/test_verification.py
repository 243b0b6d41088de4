import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training import verification
from training.verification import (
    best_accuracy_threshold,
    calibrate_threshold,
    decide,
    distance,
    identify,
    minimum_impostor_pairs,
)


def test_distance_of_two_vectors_is_their_euclidean_distance():
    assert distance([0.0, 0.0], [3.0, 4.0]) == 5.0
    assert isinstance(distance([1.0], [2.0]), float)


def test_distance_of_two_arrays_is_taken_row_by_row():
    first = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    second = np.array([[3.0, 4.0], [1.0, 1.0], [2.0, 2.0]])
    np.testing.assert_allclose(distance(first, second), [5.0, 0.0, 1.0])


def test_distance_refuses_embeddings_of_different_shapes():
    with pytest.raises(ValueError, match="same shape"):
        distance([0.0, 0.0], [0.0, 0.0, 0.0])


def test_decide_counts_a_distance_equal_to_the_threshold_as_a_match():
    assert decide(0.6, 0.6) is True
    assert decide(0.59, 0.6) is True
    assert decide(0.61, 0.6) is False


def test_decide_never_matches_a_failed_comparison():
    assert decide(float("inf"), 0.6) is False
    assert decide(float("nan"), 0.6) is False


def test_minimum_impostor_pairs_is_one_over_the_target_rounded_up():
    assert minimum_impostor_pairs(1e-3) == 1000
    assert minimum_impostor_pairs(1e-2) == 100
    assert minimum_impostor_pairs(0.3) == 4


def test_calibration_picks_the_largest_threshold_within_the_false_match_target():
    impostor = np.arange(1.0, 101.0)  # 1, 2, ..., 100
    genuine = [0.5, 2.5, 3.0, 10.0]
    calibration = calibrate_threshold(genuine, impostor, 0.02)
    # Two false matches allowed out of 100: impostors 1 and 2 may pass, impostor 3 may not.
    assert calibration.threshold < 3.0
    assert np.nextafter(calibration.threshold, np.inf) == 3.0
    assert calibration.false_match_rate == 0.02
    assert calibration.true_match_rate == 0.5  # 0.5 and 2.5 accepted; 3.0 and 10.0 rejected
    assert calibration.target_false_match_rate == 0.02
    assert (calibration.genuine_pairs, calibration.impostor_pairs) == (4, 100)


def test_calibration_stays_below_tied_impostors_that_would_exceed_the_target():
    impostor = np.array([1.0, 1.0, 1.0] + list(range(2, 99)), dtype=float)  # 100 pairs
    calibration = calibrate_threshold([0.5, 1.0], impostor, 0.02)
    assert calibration.threshold < 1.0
    assert calibration.false_match_rate == 0.0
    assert calibration.true_match_rate == 0.5


def test_calibration_with_the_minimum_impostors_allows_no_false_match_below_the_next():
    impostor = np.linspace(0.5, 1.5, 100)
    calibration = calibrate_threshold([0.2, 0.7], impostor, 0.01)
    assert np.nextafter(calibration.threshold, np.inf) == impostor[1]
    assert calibration.false_match_rate == 0.01
    assert calibration.true_match_rate == 0.5


def test_calibration_refuses_too_few_impostor_pairs_for_the_target():
    with pytest.raises(ValueError, match=r"got 99, need at least 100"):
        calibrate_threshold([0.1], np.arange(99.0), 0.01)


def test_calibration_refuses_a_target_that_is_not_a_rate():
    with pytest.raises(ValueError, match="above 0 and at most 1"):
        calibrate_threshold([0.1], np.arange(10.0), 0.0)


def test_best_accuracy_threshold_is_the_midpoint_of_a_perfect_gap():
    assert best_accuracy_threshold([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == pytest.approx(0.5)


def test_best_accuracy_threshold_takes_the_smallest_of_tied_best_cuts():
    # Cuts at 0.15 and 0.35 both get 3 of 4 right; the stricter wins.
    threshold = best_accuracy_threshold([0.1, 0.3, 0.2, 0.4], [True, True, False, False])
    assert threshold == pytest.approx(0.15)


def test_best_accuracy_threshold_can_reject_every_pair():
    threshold = best_accuracy_threshold([0.3, 0.5], [False, False])
    assert threshold < 0.3


def test_best_accuracy_threshold_can_accept_every_pair():
    assert best_accuracy_threshold([0.3, 0.5], [True, True]) == 0.5


def test_the_module_imports_without_django_or_tensorflow():
    check = (
        "import sys, training.verification; "
        "assert 'django' not in sys.modules and 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", check], check=True, cwd=Path(__file__).resolve().parents[2])


def test_identify_returns_the_nearest_enrolled_face_within_the_threshold():
    gallery = [[0.0, 0.0], [3.0, 4.0]]
    assert identify([2.9, 4.0], gallery, threshold=0.5) == (1, pytest.approx(0.1))


def test_identify_calls_a_face_farther_than_the_threshold_from_everyone_unknown():
    gallery = [[0.0, 0.0], [3.0, 4.0]]
    assert identify([0.0, 2.0], gallery, threshold=0.5) == (None, pytest.approx(2.0))
    assert identify([0.0, 2.0], [], threshold=0.5) == (None, math.inf)


# --- Open-set calibration with the margin rule ----------------------------------------------------


def test_the_margin_rule_accepts_only_a_near_and_clearly_nearest_face():
    accepted = verification.open_set_accepts([0.3, 0.3, 0.6, 0.3], [0.5, 0.32, 0.9, np.inf], 0.4, 0.05)
    assert accepted.tolist() == [True, False, False, True]


def clustered_people(count: int, photos: int, spread: float, seed: int = 0):
    """Synthetic embeddings: each person a random centre, each photo the centre plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count, 16))
    vectors = np.repeat(centres, photos, axis=0) + rng.normal(scale=spread, size=(count * photos, 16))
    return vectors, np.repeat([f"p{index}" for index in range(count)], photos)


def test_open_set_calibration_meets_the_target_rate_of_strangers_accepted():
    vectors, labels = clustered_people(300, 2, spread=0.5)

    points = verification.calibrate_open_set(vectors, labels, [10, 50], margin=0.1,
                                             target_false_positive_rate=0.02, trials=30, strangers_per_trial=100)

    assert [point.gallery_size for point in points] == [10, 50]
    for point in points:
        assert point.false_positive_rate <= 0.02
        assert point.stranger_searches == 3000 and point.genuine_searches == 30 * point.gallery_size
        assert 0.0 < point.true_positive_rate <= 1.0
    assert points[1].threshold <= points[0].threshold  # never looser for a larger gallery


def test_open_set_calibration_refuses_a_gallery_larger_than_the_people_it_has():
    vectors, labels = clustered_people(20, 2, spread=0.5)
    with pytest.raises(ValueError, match="Cannot simulate a gallery of 30"):
        verification.calibrate_open_set(vectors, labels, [30], margin=0.1)
