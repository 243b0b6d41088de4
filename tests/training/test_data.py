"""Labelled chips: sets, the folder reader and its cache, LFW's reference people, splits, batches."""

import shutil

import numpy
import pytest
from PIL import Image

from training import data
from training.data import LabelledChips


def synthetic(labels, names=None) -> LabelledChips:
    labels = numpy.asarray(labels)
    names = names or [f"person {index}" for index in range(labels.max() + 1)]
    chips = numpy.zeros((len(labels), 150, 150, 3), numpy.uint8)
    chips[:, 0, 0, 0] = numpy.arange(len(labels))  # each chip recognisable by its first pixel
    return LabelledChips(chips, labels, names, sources=[f"chip {index}" for index in range(len(labels))])


def test_a_subset_keeps_the_chosen_chips_and_only_the_names_they_use():
    chips = synthetic([0, 0, 1, 2, 2])
    subset = chips.subset([4, 3, 0])
    assert subset.names == ["person 0", "person 2"]
    assert subset.labels.tolist() == [1, 1, 0]
    assert subset.chips[:, 0, 0, 0].tolist() == [4, 3, 0]
    assert subset.sources == ["chip 4", "chip 3", "chip 0"]
    assert (len(subset), subset.identities) == (3, 2)


def test_merging_keeps_people_with_the_same_name_as_one_identity():
    employees = synthetic([0, 1, 1], ["Ann", "Bob"])
    public = synthetic([0, 0, 1], ["Bob", "Cy"])
    merged = data.merge(employees, public)
    assert merged.names == ["Ann", "Bob", "Cy"]
    assert merged.labels.tolist() == [0, 1, 1, 1, 1, 2]
    assert len(merged) == 6


def test_labels_that_name_no_identity_are_refused():
    with pytest.raises(ValueError, match="index the 1 names"):
        synthetic([0, 1], ["only one"])


def test_a_split_never_puts_one_person_on_both_sides():
    chips = synthetic(numpy.repeat(numpy.arange(50), 3))
    train, validation = data.split_by_identity(chips, validation_share=0.2, seed=3)
    assert set(train.names).isdisjoint(validation.names)
    assert (train.identities, validation.identities) == (40, 10)
    assert len(train) + len(validation) == len(chips)
    again, _ = data.split_by_identity(chips, validation_share=0.2, seed=3)
    assert again.names == train.names


def test_an_epoch_of_balanced_batches_holds_every_person_with_two_chips_once():
    # 70 people with 1 to 9 chips each, shuffled.
    rng = numpy.random.default_rng(0)
    labels = rng.permutation(numpy.repeat(numpy.arange(70), rng.integers(1, 10, 70)))
    batches = data.balanced_batches(labels, identities_per_batch=8, images_per_identity=4, seed=1)
    seen = numpy.concatenate([numpy.unique(labels[batch]) for batch in batches])
    counts = numpy.bincount(labels)
    assert sorted(seen.tolist()) == sorted(numpy.flatnonzero(counts >= 2).tolist())
    for batch in batches:
        people, per_person = numpy.unique(labels[batch], return_counts=True)
        assert 2 <= len(people) <= 8
        assert per_person.max() <= 4
        assert (per_person == numpy.minimum(counts[people], 4)).all()
        assert len(set(batch.tolist())) == len(batch)


def test_balanced_batches_follow_their_seed():
    labels = numpy.repeat(numpy.arange(20), 6)
    first = data.balanced_batches(labels, 4, 4, seed=5)
    assert all(numpy.array_equal(a, b) for a, b in zip(first, data.balanced_batches(labels, 4, 4, seed=5)))
    assert not all(numpy.array_equal(a, b) for a, b in zip(first, data.balanced_batches(labels, 4, 4, seed=6)))


def test_a_last_batch_of_one_person_joins_the_one_before():
    batches = data.balanced_batches(numpy.repeat(numpy.arange(9), 2), identities_per_batch=4, seed=0)
    assert [len(batch) for batch in batches] == [8, 10]


@pytest.fixture
def people_folder(tmp_path, faces_dir):
    """Three people from LFW with two photos each, a fourth with one, and a photo without a face."""
    root = tmp_path / "people"
    lfw = faces_dir / "lfw"
    chosen = [folder for folder in sorted(lfw.iterdir()) if len(list(folder.glob("*.jpg"))) >= 2][:3]
    for folder in chosen:
        (root / folder.name).mkdir(parents=True)
        for photo in sorted(folder.glob("*.jpg"))[:2]:
            shutil.copy(photo, root / folder.name / photo.name)
    lonely = next(folder for folder in sorted(lfw.iterdir()) if len(list(folder.glob("*.jpg"))) == 1)
    (root / lonely.name).mkdir()
    shutil.copy(next(lonely.glob("*.jpg")), root / lonely.name)
    Image.new("RGB", (250, 250), (200, 200, 200)).save(root / chosen[0].name / "blank.jpg")
    return root, [folder.name for folder in chosen]


@pytest.mark.slow
def test_chips_from_folder_reads_each_persons_central_faces_and_skips_photos_without_one(people_folder):
    root, names = people_folder
    chips = data.chips_from_folder(root, min_images=2, exclude_names=[names[2]])
    assert chips.names == names[:2]
    assert chips.labels.tolist() == [0, 0, 1, 1]
    assert chips.chips.shape == (4, 150, 150, 3) and chips.chips.dtype == numpy.uint8
    assert all(source.startswith(f"{chips.names[label]}/") for source, label in zip(chips.sources, chips.labels))


@pytest.mark.slow
def test_chips_from_folder_reads_its_cache_the_second_time(people_folder, tmp_path, monkeypatch):
    root, names = people_folder
    first = data.chips_from_folder(root, cache_dir=tmp_path / "cache")
    detected = []
    original = data.central_chip
    monkeypatch.setattr(data, "central_chip", lambda path: detected.append(path) or original(path))
    second = data.chips_from_folder(root, cache_dir=tmp_path / "cache")
    assert detected == []
    assert numpy.array_equal(second.chips, first.chips) and second.names == first.names
    assert second.sources == first.sources

    # A photo replaced by another makes the cache stale: detection runs again.
    shutil.copy(root / names[1] / sorted(p.name for p in (root / names[1]).iterdir())[0],
                root / names[0] / sorted(p.name for p in (root / names[0]).iterdir())[-1])
    data.chips_from_folder(root, cache_dir=tmp_path / "cache")
    assert len(detected) == 7


def test_the_reference_people_are_devtests_and_none_of_devtrains(faces_dir):
    people = data.reference_people(faces_dir)
    devtrain = set()
    for line in (faces_dir / "lfw-protocol" / "pairsDevTrain.txt").read_text().splitlines():
        fields = line.split()
        devtrain.update(fields[0::2] if len(fields) == 4 else fields[:1])
    assert len(people) == 963
    assert people.isdisjoint(devtrain)
