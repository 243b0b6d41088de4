import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.evaluation import (
    Pair,
    auc,
    equal_error_rate,
    plot_roc,
    read_pairs,
    roc_curve,
    score,
    tar_at_far,
    ten_fold_accuracy,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FACES_DIR = Path(os.environ.get("FRID_FACES_DIR", PROJECT_ROOT.parent / "shared" / "faces"))

# One swap in a 2x2: genuine 0.1 and 0.3, impostor 0.2 and 0.4.
SWAPPED_DISTANCES = [0.1, 0.3, 0.2, 0.4]
SWAPPED_SAME = [True, True, False, False]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_it_reads_lfw_same_and_different_lines_skipping_the_count_line(tmp_path):
    pairs_file = write(tmp_path, "pairs.txt", "10 300\nAlice\t1\t12\nAlice 1   Bob_Smith\t3\n")
    images = tmp_path / "lfw"
    assert read_pairs(pairs_file, images) == [
        Pair(images / "Alice" / "Alice_0001.jpg", images / "Alice" / "Alice_0012.jpg", True),
        Pair(images / "Alice" / "Alice_0001.jpg", images / "Bob_Smith" / "Bob_Smith_0003.jpg", False),
    ]


def test_it_skips_a_single_number_count_line(tmp_path):
    pairs_file = write(tmp_path, "pairs.txt", "1100\nAlice\t1\t2\n")
    assert len(read_pairs(pairs_file, tmp_path)) == 1


def test_it_reads_an_lfw_file_without_a_count_line(tmp_path):
    pairs_file = write(tmp_path, "pairs.txt", "Alice\t1\t2\n\nBob\t2\tCarol\t1\n")
    assert [pair.same for pair in read_pairs(pairs_file, tmp_path)] == [True, False]


def test_it_names_file_and_line_of_a_line_with_the_wrong_number_of_fields(tmp_path):
    pairs_file = write(tmp_path, "pairs.txt", "Alice\t1\t2\n\nBob\t2\n")
    with pytest.raises(ValueError, match=r"pairs\.txt:3: expected"):
        read_pairs(pairs_file, tmp_path)


def test_it_rejects_an_image_number_that_is_not_a_positive_whole_number(tmp_path):
    pairs_file = write(tmp_path, "pairs.txt", "Alice\t1\tx\n")
    with pytest.raises(ValueError, match=r"pairs\.txt:1: image number"):
        read_pairs(pairs_file, tmp_path)


def test_it_rejects_a_different_people_line_naming_one_person(tmp_path):
    pairs_file = write(tmp_path, "pairs.txt", "Alice\t1\tAlice\t2\n")
    with pytest.raises(ValueError, match=r"pairs\.txt:1:"):
        read_pairs(pairs_file, tmp_path)


def test_it_reads_a_csv_pair_list_with_every_spelling_of_same(tmp_path):
    pairs_file = write(
        tmp_path,
        "pairs.csv",
        "image_a,image_b,same\na.jpg,b.jpg,1\na.jpg,c.jpg,0\nx/a.jpg,x/b.jpg,TRUE\n"
        "a.jpg,d.jpg,false\nb.jpg,c.jpg, yes\nc.jpg,d.jpg,No\n",
    )
    pairs = read_pairs(pairs_file, tmp_path)
    assert [pair.same for pair in pairs] == [True, False, True, False, True, False]
    assert pairs[2] == Pair(tmp_path / "x" / "a.jpg", tmp_path / "x" / "b.jpg", True)


def test_it_names_the_csv_line_with_an_unknown_same_value(tmp_path):
    pairs_file = write(tmp_path, "pairs.csv", "image_a,image_b,same\na.jpg,b.jpg,1\na.jpg,c.jpg,maybe\n")
    with pytest.raises(ValueError, match=r"pairs\.csv:3: 'same'"):
        read_pairs(pairs_file, tmp_path)


def test_it_names_the_csv_line_with_missing_fields(tmp_path):
    pairs_file = write(tmp_path, "pairs.csv", "image_a,image_b,same\na.jpg,b.jpg\n")
    with pytest.raises(ValueError, match=r"pairs\.csv:2: expected 3 fields"):
        read_pairs(pairs_file, tmp_path)


def test_it_rejects_a_csv_with_the_wrong_header(tmp_path):
    pairs_file = write(tmp_path, "pairs.csv", "image_a,image_c,same\na.jpg,b.jpg,1\n")
    with pytest.raises(ValueError, match=r"pairs\.csv:1: expected the header"):
        read_pairs(pairs_file, tmp_path)


@pytest.mark.skipif(not (FACES_DIR / "lfw-protocol").is_dir(), reason=f"no face data at {FACES_DIR}")
def test_the_lfw_dev_test_list_has_500_same_and_500_different_pairs_of_existing_images():
    pairs = read_pairs(FACES_DIR / "lfw-protocol" / "pairsDevTest.txt", FACES_DIR / "lfw")
    assert sum(pair.same for pair in pairs) == 500
    assert sum(not pair.same for pair in pairs) == 500
    missing = [image for pair in pairs for image in (pair.image_a, pair.image_b) if not image.is_file()]
    assert missing == []


def test_ten_fold_accuracy_folds_take_consecutive_parts_of_each_kind():
    # 10 genuine pairs then 10 impostor pairs; fold k holds genuine pair k and impostor pair
    # 10 + k. All genuine distances are 0.2 but pair 3's (0.8); all impostor distances are 0.9
    # but pair 15's (0.3). Fold 3 trains without the hard genuine pair, picks 0.25 and rejects
    # it; fold 5 trains without the hard impostor, picks 0.85 and accepts it; the other folds
    # tie 0.25 against 0.85 at 17/18, take the smaller, and are right on both of their pairs.
    distances = np.array([0.2] * 10 + [0.9] * 10)
    distances[3] = 0.8
    distances[15] = 0.3
    same = np.arange(20) < 10
    mean, std = ten_fold_accuracy(distances, same)
    assert mean == pytest.approx(0.9)
    assert std == pytest.approx(math.sqrt((8 * 0.1**2 + 2 * 0.4**2) / 10))


def test_ten_fold_accuracy_counts_a_failed_pair_as_wrong():
    distances = np.where(np.arange(20) % 2 == 0, 0.1, 0.9)
    same = np.arange(20) % 2 == 0
    distances[0] = np.inf  # a genuine pair whose comparison failed
    failed = np.isinf(distances)
    mean, std = ten_fold_accuracy(distances, same, failed=failed)
    assert mean == pytest.approx(0.95)
    assert std == pytest.approx(math.sqrt((0.45**2 + 9 * 0.05**2) / 10))


def test_roc_curve_lists_rates_at_each_distance_from_reject_all():
    false_match_rates, true_match_rates, thresholds = roc_curve(SWAPPED_DISTANCES, SWAPPED_SAME)
    np.testing.assert_allclose(false_match_rates, [0.0, 0.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(true_match_rates, [0.0, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(thresholds, [-np.inf, 0.1, 0.2, 0.3, 0.4])


def test_auc_is_one_for_perfect_separation_and_zero_when_reversed():
    assert auc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 1.0
    assert auc([0.8, 0.9, 0.1, 0.2], [True, True, False, False]) == 0.0


def test_auc_with_one_swap_in_two_by_two_is_three_quarters():
    assert auc(SWAPPED_DISTANCES, SWAPPED_SAME) == pytest.approx(0.75)


def test_auc_gives_half_credit_for_ties():
    assert auc([0.5, 0.5], [True, False]) == pytest.approx(0.5)


def test_equal_error_rate_is_zero_for_perfect_separation():
    assert equal_error_rate([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == (0.0, 0.2)


def test_equal_error_rate_with_one_swap_in_two_by_two():
    rate, threshold = equal_error_rate(SWAPPED_DISTANCES, SWAPPED_SAME)
    assert rate == pytest.approx(0.5)
    assert threshold == 0.2  # FMR 1/2 and FNMR 1/2 there


def test_equal_error_rate_is_interpolated_between_roc_points():
    # Genuine 0.1, 0.2, 0.5; impostor 0.3, 0.4. From 0.2 (FMR 0, FNMR 1/3) to 0.3 (FMR 1/2,
    # FNMR 1/3) the line crosses FMR = FNMR at 1/3; 0.3 has the smaller gap (1/6 against 1/3).
    rate, threshold = equal_error_rate([0.1, 0.2, 0.5, 0.3, 0.4], [True, True, True, False, False])
    assert rate == pytest.approx(1 / 3)
    assert threshold == 0.3


def test_tar_at_far_uses_the_largest_threshold_within_the_false_match_rate():
    impostor = np.arange(1.0, 101.0)
    genuine = np.array([0.5, 1.5, 2.5, 50.0])
    distances = np.concatenate([genuine, impostor])
    same = np.arange(104) < 4
    tar, threshold = tar_at_far(distances, same, 0.01)  # one impostor (1.0) may pass
    assert tar == 0.5
    assert np.nextafter(threshold, np.inf) == 2.0
    tar, threshold = tar_at_far(distances, same, 0.03)
    assert tar == 0.75
    assert np.nextafter(threshold, np.inf) == 4.0


def test_tar_at_far_with_too_few_impostors_answers_at_zero_false_matches_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="training.evaluation"):
        tar, threshold = tar_at_far([0.1, 0.3, 0.2, 0.4], [True, True, False, False], 1e-3)
    assert tar == 0.5
    assert np.nextafter(threshold, np.inf) == 0.2
    assert "Only 2 impostor pairs" in caplog.text


def test_score_counts_failed_pairs_as_wrong_and_ranks_them_worst():
    # Interleaved so that the 3 folds are (genuine, impostor) pairs; the last fold failed twice.
    distances = [0.1, 0.8, 0.2, 0.9, np.inf, np.inf]
    same = [True, False, True, False, True, False]
    metrics = score(distances, same, threshold=0.5, folds=3)
    assert metrics.pairs == 6
    assert metrics.accuracy == pytest.approx(4 / 6)
    assert metrics.accuracy_10fold == pytest.approx(2 / 3)
    assert metrics.accuracy_10fold_std == pytest.approx(math.sqrt(2 / 9))
    # Genuine 0.1, 0.2, +inf against impostor 0.8, 0.9, -inf: 4 of 9 orderings right.
    assert metrics.auc == pytest.approx(4 / 9)
    assert metrics.eer == pytest.approx(1 / 3)
    # The failed impostor passes at any threshold, so no threshold reaches FAR 1e-2.
    assert metrics.tar_at_far_1e_2 == 0.0
    assert metrics.threshold_at_far_1e_2 == -np.inf
    assert metrics.threshold == 0.5


def test_score_treats_pairs_marked_failed_as_failed_whatever_their_distance():
    distances = [0.1, 0.8, 0.2, 0.9]
    same = [True, False, True, False]
    metrics = score(distances, same, threshold=0.5, failed=[False, False, True, False], folds=2)
    assert metrics.accuracy == 0.75
    assert metrics.auc == pytest.approx(0.5)  # genuine 0.1 beats both impostors; failed 0.2 beats none


def test_metrics_as_dict_has_the_report_keys_and_nulls_for_infinite_thresholds():
    distances = [0.1, 0.8, 0.2, 0.9, np.inf, np.inf]
    metrics = score(distances, [True, False, True, False, True, False], 0.5, folds=3)
    values = metrics.as_dict()
    assert set(values) == {
        "pairs", "accuracy", "accuracy_10fold", "accuracy_10fold_std", "auc", "eer",
        "tar_at_far_1e-2", "tar_at_far_1e-3", "threshold", "threshold_at_far_1e-2", "threshold_at_far_1e-3",
    }
    assert values["threshold_at_far_1e-2"] is None
    assert values["pairs"] == 6
    assert values["accuracy"] == pytest.approx(4 / 6)


def test_plot_roc_writes_a_png(tmp_path):
    curves = {
        "FRID": roc_curve(np.linspace(0, 1, 40), np.arange(40) < 20)[:2],
        "dlib": roc_curve(SWAPPED_DISTANCES, SWAPPED_SAME)[:2],
    }
    path = tmp_path / "roc.png"
    plot_roc(curves, path)
    content = path.read_bytes()
    assert content.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(content) > 1000


def test_the_module_imports_without_django_or_tensorflow():
    check = (
        "import sys, training.evaluation; "
        "assert 'django' not in sys.modules and 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", check], check=True, cwd=PROJECT_ROOT)
