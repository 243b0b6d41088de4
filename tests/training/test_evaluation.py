import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.engine import FileEmbeddings
from training.evaluation import (
    Pair,
    auc,
    distances_between_all_photos,
    distances_by_label,
    equal_error_rate,
    evaluate_embeddings,
    format_table,
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


# 100 impostor pairs, so that FAR 1e-2 allows exactly one false match: one close impostor (0.3),
# 98 far ones (0.9) and, last, one whose comparison failed. Two genuine pairs at 0.5 and 0.85.
IMPOSTORS_WITH_ONE_FAILED = [0.3] + [0.9] * 98 + [np.inf]
TWO_GENUINE = [0.5, 0.85]


def test_a_failed_impostor_pair_is_a_correct_rejection_that_does_not_raise_the_false_match_rate():
    distances = TWO_GENUINE + IMPOSTORS_WITH_ONE_FAILED
    same = [True] * 2 + [False] * 100
    metrics = score(distances, same, threshold=0.6, folds=2)
    # The one false match FAR 1e-2 allows is the 0.3 impostor, so the threshold sits just below
    # 0.9 and both genuine pairs pass; were the failed impostor accepted, the threshold would have
    # to fall below 0.3 and reject both.
    assert metrics.tar_at_far_1e_2 == 1.0
    assert np.nextafter(metrics.threshold_at_far_1e_2, np.inf) == 0.9
    false_match_rates, _, thresholds = roc_curve(distances, same)
    assert false_match_rates[thresholds == 0.9] == pytest.approx(99 / 100)  # the failed one stays out
    # Both genuine pairs are nearer than every impostor but the 0.3 one, and nearer than the failed one.
    assert metrics.auc == pytest.approx(1 - 2 / 200)


def test_a_failed_genuine_pair_is_a_false_non_match():
    distances = [0.1, 0.2, np.inf, 0.8, 0.9]
    same = [True, True, True, False, False]
    metrics = score(distances, same, threshold=0.5, folds=2)
    assert metrics.tar_at_far_1e_2 == pytest.approx(2 / 3)
    assert metrics.auc == pytest.approx(4 / 6)


def test_both_accuracies_still_count_every_failed_pair_as_an_error():
    # Interleaved so that the 3 folds are (genuine, impostor) pairs; the last fold failed twice.
    distances = [0.1, 0.8, 0.2, 0.9, np.inf, np.inf]
    same = [True, False, True, False, True, False]
    metrics = score(distances, same, threshold=0.5, folds=3)
    assert metrics.pairs == 6
    # The failed impostor pair is rejected at 0.5, yet it is counted wrong.
    assert metrics.accuracy == pytest.approx(4 / 6)
    assert metrics.accuracy_10fold == pytest.approx(2 / 3)
    assert metrics.accuracy_10fold_std == pytest.approx(math.sqrt(2 / 9))
    # Genuine 0.1, 0.2, +inf against impostor 0.8, 0.9, +inf: 6 orderings right and one tie of 9.
    assert metrics.auc == pytest.approx(6.5 / 9)
    assert metrics.tar_at_far_1e_2 == pytest.approx(2 / 3)
    assert np.nextafter(metrics.threshold_at_far_1e_2, np.inf) == 0.8
    assert metrics.threshold == 0.5


def test_score_treats_pairs_marked_failed_as_failed_whatever_their_distance():
    distances = [0.1, 0.8, 0.2, 0.9]
    same = [True, False, True, False]
    metrics = score(distances, same, threshold=0.5, failed=[False, False, True, False], folds=2)
    assert metrics.accuracy == 0.75
    assert metrics.auc == pytest.approx(0.5)  # genuine 0.1 beats both impostors; failed 0.2 beats none
    impostor_failed = score(distances, same, threshold=0.5, failed=[False, True, False, False], folds=2)
    assert impostor_failed.auc == 1.0  # the failed impostor, rejected, is beaten by both genuine pairs


def embeddings_of(vectors: dict[str, list[float] | None], no_face: list[str] = ()) -> FileEmbeddings:
    return FileEmbeddings(
        embeddings={Path(name): None if vector is None else np.array(vector) for name, vector in vectors.items()},
        no_face=[Path(name) for name in no_face],
        unreadable={},
    )


# Four people, one photo of Dan without a face: his genuine pair and one impostor pair fail.
FOUR_PEOPLE = embeddings_of(
    {"ann/1.jpg": [0.0, 0.0], "ann/2.jpg": [0.1, 0.0], "bob/1.jpg": [1.0, 0.0], "dan/1.jpg": [0.0, 1.0],
     "dan/2.jpg": None},
    no_face=["dan/2.jpg"],
)
FOUR_PEOPLE_PAIRS = [
    Pair(Path("ann/1.jpg"), Path("ann/2.jpg"), True),
    Pair(Path("dan/1.jpg"), Path("dan/2.jpg"), True),
    Pair(Path("ann/1.jpg"), Path("bob/1.jpg"), False),
    Pair(Path("bob/1.jpg"), Path("dan/2.jpg"), False),
]


def test_evaluation_reports_the_failure_to_acquire_rate_and_the_failed_pairs():
    result = evaluate_embeddings(FOUR_PEOPLE_PAIRS, FOUR_PEOPLE, threshold=0.5, folds=2)
    values = result.as_dict()
    assert values["images"] == 5
    assert values["no_face"] == 1
    assert values["failure_to_acquire_rate"] == pytest.approx(1 / 5)
    assert values["failed_pairs"] == 2
    assert values["accuracy"] == 0.5  # the two failed pairs are errors, the others right
    assert values["tar_at_far_1e-2"] == 0.5  # the failed impostor pair is not accepted
    table = format_table({"FRID": result})
    assert "FTA" in table.splitlines()[0]
    assert "20.00%" in table.splitlines()[2]
    assert "correct rejection" in table and "error in both accuracies" in table


def test_a_photo_embedded_from_a_centre_guess_is_no_failure_to_acquire():
    centred = embeddings_of({"ann/1.jpg": [0.0, 0.0], "ann/2.jpg": [0.1, 0.0], "bob/1.jpg": [1.0, 0.0]},
                            no_face=["ann/2.jpg"])
    pairs = [Pair(Path("ann/1.jpg"), Path("ann/2.jpg"), True), Pair(Path("ann/1.jpg"), Path("bob/1.jpg"), False)]
    result = evaluate_embeddings(pairs, centred, threshold=0.5, folds=2)
    assert (result.no_face, result.failure_to_acquire_rate, result.failed_pairs) == (1, 0.0, 0)


def test_calibration_distances_keep_failed_pairs_as_non_matches():
    genuine, impostor = distances_by_label(FOUR_PEOPLE_PAIRS, FOUR_PEOPLE)
    np.testing.assert_allclose(genuine, [0.1, np.inf])
    np.testing.assert_allclose(impostor, [1.0, np.inf])


def test_all_photo_pairs_put_every_pair_with_a_failed_photo_at_infinity():
    genuine, impostor = distances_between_all_photos(FOUR_PEOPLE)
    # Ann 2 photos, Bob 1, Dan 2 (one failed): 2 genuine pairs, 8 impostor pairs, 3 of them failed.
    np.testing.assert_allclose(np.sort(genuine), [0.1, np.inf])
    assert impostor.size == 8
    assert np.count_nonzero(np.isinf(impostor)) == 3
    assert np.sort(impostor)[0] == pytest.approx(0.9)  # Ann 2 to Bob


def test_metrics_as_dict_has_the_report_keys_and_nulls_for_infinite_thresholds():
    distances = [0.1, 0.8, 0.2, 0.9, np.inf, np.inf]
    metrics = score(distances, [True, False, True, False, True, False], np.inf, folds=3)
    values = metrics.as_dict()
    assert set(values) == {
        "pairs", "accuracy", "accuracy_10fold", "accuracy_10fold_std", "auc", "eer",
        "tar_at_far_1e-2", "tar_at_far_1e-3", "threshold", "threshold_at_far_1e-2", "threshold_at_far_1e-3",
    }
    assert values["threshold"] is None
    assert values["threshold_at_far_1e-2"] == pytest.approx(0.8)
    assert values["pairs"] == 6
    assert values["accuracy"] == pytest.approx(2 / 6)  # accepting all: the compared genuine pairs


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
