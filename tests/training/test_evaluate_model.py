"""python manage.py evaluate_model: scoring a model version on labelled pairs of real photos."""

import json
from collections import Counter
from io import StringIO
from pathlib import Path

import numpy
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from tests.versions import scaled_rotated_version
from training.model_store import BASE_THRESHOLD

pytestmark = pytest.mark.django_db

JSON_KEYS = {"pairs", "images", "no_face", "failure_to_acquire_rate", "failed_pairs", "accuracy", "accuracy_10fold", "accuracy_10fold_std", "auc",
             "eer", "tar_at_far_1e-2", "tar_at_far_1e-3", "threshold"}


def evaluate(*arguments) -> str:
    output = StringIO()
    call_command("evaluate_model", *arguments, stdout=output)
    return output.getvalue()


def test_it_prints_one_json_object_with_the_agreed_keys(base_model_version, lfw_csv, faces_dir):
    result = json.loads(evaluate("--pairs", str(lfw_csv), "--images", str(faces_dir / "lfw"), "--json"))
    assert JSON_KEYS <= set(result)
    assert result["pairs"] == 10
    assert result["images"] == 20
    assert result["no_face"] == 0
    assert result["failure_to_acquire_rate"] == 0
    assert result["threshold"] == pytest.approx(BASE_THRESHOLD)
    # Ten easy pairs: the base network gets at least nine right at its threshold.
    assert result["accuracy"] >= 0.9
    assert 0.5 <= result["auc"] <= 1.0


def test_a_photo_without_a_face_is_a_failure_to_acquire_unless_a_centre_crop_is_asked_for(
    base_model_version, lfw_csv, faces_dir, tmp_path
):
    # A plain gradient: no real photo is guaranteed to hold no face.
    gradient = numpy.tile(numpy.linspace(0, 255, 250, dtype=numpy.uint8), (250, 1))
    Image.fromarray(numpy.stack([gradient] * 3, axis=-1)).save(tmp_path / "empty.jpg")
    first_image = lfw_csv.read_text().splitlines()[1].split(",")[0]
    with open(lfw_csv, "a") as pairs:
        pairs.write(f"{tmp_path / 'empty.jpg'},{first_image},0\n")

    failed = json.loads(evaluate("--pairs", str(lfw_csv), "--images", str(faces_dir / "lfw"), "--json"))
    assert failed["no_face"] == 1
    assert failed["failure_to_acquire_rate"] == pytest.approx(1 / 21)
    assert failed["failed_pairs"] == 1
    # The failed pair is an impostor pair: a correct rejection for the ROC, an error for accuracy.
    assert failed["accuracy"] <= 10 / 11

    centred = json.loads(evaluate("--pairs", str(lfw_csv), "--images", str(faces_dir / "lfw"), "--json",
                                  "--no-face", "center"))
    assert centred["no_face"] == 1
    assert centred["failure_to_acquire_rate"] == 0
    assert centred["failed_pairs"] == 0


def test_it_prints_a_table_and_saves_a_roc_plot(base_model_version, lfw_csv, faces_dir, tmp_path):
    plot = tmp_path / "roc.png"
    output = evaluate("--pairs", str(lfw_csv), "--images", str(faces_dir / "lfw"), "--plot", str(plot))
    assert "10-fold accuracy" in output
    assert "FTA" in output
    assert "an error in both accuracies" in output
    assert "FRID dlib-resnet-v1" in output
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_it_reads_lfw_pair_files(base_model_version, faces_dir):
    pairs = faces_dir / "lfw-protocol" / "pairsDevTest.txt"
    result = json.loads(evaluate("--pairs", str(pairs), "--images", str(faces_dir / "lfw"), "--json",
                                 "--limit", "6"))
    assert result["pairs"] == 12


def test_it_names_the_known_versions_when_asked_for_an_unknown_one(base_model_version, lfw_csv, faces_dir):
    with pytest.raises(CommandError, match="known versions: dlib-resnet-v1"):
        evaluate("--pairs", str(lfw_csv), "--images", str(faces_dir / "lfw"), "--model", "nonesuch")


def test_a_missing_pairs_file_is_a_clear_error(base_model_version, tmp_path):
    with pytest.raises(CommandError, match="missing.txt"):
        evaluate("--pairs", str(tmp_path / "missing.txt"), "--images", str(tmp_path))


@pytest.mark.slow
def test_on_lfw_dev_test_frid_is_at_least_as_accurate_as_dlibs_own_pipeline(base_model_version, faces_dir):
    pairs = faces_dir / "lfw-protocol" / "pairsDevTest.txt"
    result = json.loads(evaluate("--pairs", str(pairs), "--images", str(faces_dir / "lfw"), "--json",
                                 "--reference", "dlib"))
    assert result["pairs"] == 1000
    assert result["accuracy_10fold"] >= result["reference"]["accuracy_10fold"]
    assert result["accuracy_10fold"] >= 0.977


def test_with_all_pairs_and_versus_it_scores_every_two_photos_of_both_versions_side_by_side(
    base_model_version, lfw_csv, faces_dir
):
    # Every distance of the scaled version is twice the base's: the same ROC, twice the thresholds.
    scaled = scaled_rotated_version(base_model_version, scale=2.0, name="doubled")
    result = json.loads(evaluate("--pairs", str(lfw_csv), "--images", str(faces_dir / "lfw"), "--json",
                                 "--model", "doubled", "--versus", base_model_version.name, "--all-pairs"))
    images = {line.split(",")[column] for line in lfw_csv.read_text().splitlines()[1:] for column in (0, 1)}
    per_person = Counter(Path(image).parent.name for image in images)
    genuine = sum(count * (count - 1) // 2 for count in per_person.values())
    impostor = len(images) * (len(images) - 1) // 2 - genuine

    doubled, base = result["all_pairs"], result["versus"][base_model_version.name]["all_pairs"]
    assert result["threshold"] == pytest.approx(scaled.threshold)
    for figures in (doubled, base):
        assert (figures["genuine_pairs"], figures["impostor_pairs"], figures["not_compared"]) == (genuine, impostor, 0)
    for key in ("auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3"):
        assert doubled[key] == pytest.approx(base[key], abs=1e-6)
    assert doubled["threshold_at_far_1e-3"] == pytest.approx(2 * base["threshold_at_far_1e-3"], rel=1e-3)
    assert result["versus"][base_model_version.name]["pairs"] == result["pairs"] == 10

    table = evaluate("--pairs", str(lfw_csv), "--images", str(faces_dir / "lfw"), "--model", "doubled",
                     "--versus", base_model_version.name, "--all-pairs")
    assert "FRID doubled" in table and f"FRID {base_model_version.name}" in table
    assert f"{impostor:,}" in table and "All pairs: every two of the listed photos" in table
