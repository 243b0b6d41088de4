"""fine_tune and its parts on a tiny real set: 12 LFW people with four photos each."""

import keras
import numpy
import pytest

from training import data, finetune, losses
from training.embedder import Embedder
from training.finetune import Parameters, fine_tune


@pytest.fixture(scope="module")
def tiny_people(faces_dir):
    """(train: 8 people, validation: 4 people), four real chips each."""
    root = faces_dir / "lfw"
    four = sorted(folder.name for folder in root.iterdir() if len(list(folder.glob("*.jpg"))) == 4)
    chips = data.chips_from_folder(root, min_images=4, only_names=four[::8][:12])
    assert chips.identities == 12
    return chips.subset(numpy.flatnonzero(chips.labels < 8)), chips.subset(numpy.flatnonzero(chips.labels >= 8))


@pytest.fixture(scope="module")
def tuned(dlib_network, tiny_people):
    """The base network's weights before, the parameters, the epochs reported, and the result."""
    train, validation = tiny_people
    weights_before = [array.copy() for array in dlib_network.get_weights()]
    # Without mirroring each epoch is the same single batch (8 people x 4 photos): its loss, as
    # reported before each update, is the training loss of the network as it was.
    parameters = Parameters(learning_rate=1e-4, epochs=4, patience=4, identities_per_batch=8, mirror=False)
    reported = []
    result = fine_tune(dlib_network, train, validation, parameters,
                       on_epoch=lambda epoch, epochs, record: reported.append((epoch, epochs, record)))
    return weights_before, parameters, reported, result


def batch_hard_loss(model, chips: data.LabelledChips) -> float:
    embeddings = finetune.embed(model, chips.chips, mirror=False)
    return float(losses.batch_hard_triplet_loss(chips.labels, embeddings, 0.2, squared=False))


@pytest.mark.slow  # the real network on real chips
def test_fine_tuning_lowers_the_training_loss(dlib_network, tiny_people, tuned):
    train, _ = tiny_people
    _, _, _, result = tuned
    assert result.epochs[-1]["loss"] < result.epochs[0]["loss"]
    assert batch_hard_loss(result.model, train) < batch_hard_loss(dlib_network, train)


@pytest.mark.slow  # the real network on real chips
def test_fine_tuning_changes_only_the_trainable_layers(dlib_network, tuned):
    _, parameters, _, result = tuned
    assert parameters.trainable == ("stage4", "stage5", "embedding")  # the default
    changed = set()
    for layer in dlib_network.layers:
        before, after = layer.get_weights(), result.model.get_layer(layer.name).get_weights()
        if any(not numpy.array_equal(old, new) for old, new in zip(before, after)):
            changed.add(layer.name)
    assert changed and all(finetune.matches(name, parameters.trainable) for name in changed)
    assert "embedding" in changed and any(name.startswith("stage4") for name in changed)
    assert not any(name.startswith(("stage1", "stage2", "stage3")) for name in changed)


@pytest.mark.slow  # the real network on real chips
def test_fine_tuning_leaves_the_callers_network_as_it_was(dlib_network, tuned):
    weights_before, _, _, result = tuned
    assert result.model is not dlib_network
    assert all(numpy.array_equal(old, new) for old, new in zip(weights_before, dlib_network.get_weights()))
    assert all(layer.trainable or layer.name.endswith("_pad_channels") for layer in dlib_network.layers)


@pytest.mark.slow  # the real network on real chips
def test_the_tuned_network_is_saved_and_embeds_like_the_base_one(dlib_network, tiny_people, tuned, tmp_path):
    train, _ = tiny_people
    _, _, _, result = tuned
    assert result.model.input_shape == dlib_network.input_shape
    assert result.model.output_shape == dlib_network.output_shape
    result.model.save(tmp_path / "tuned.keras")
    loaded = Embedder.from_file(tmp_path / "tuned.keras").embed(train.chips[:4])
    assert loaded.shape == (4, 128)
    assert numpy.allclose(loaded, finetune.embed(result.model, train.chips[:4]), atol=1e-5)


@pytest.mark.slow  # the real network on real chips
def test_every_epoch_is_reported_with_its_figures_and_the_best_is_kept(tuned):
    _, parameters, reported, result = tuned
    assert [(epoch, epochs) for epoch, epochs, _ in reported] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [record for _, _, record in reported] == result.epochs
    assert {"epoch", "loss", "validation_loss", "validation_tar"} <= set(result.epochs[0])
    best = max(result.epochs, key=lambda record: record["validation_tar"])
    assert result.best_epoch == best["epoch"]
    assert set(result.baseline) == {"validation_loss", "validation_tar"}
    assert result.device.startswith(("CPU", "GPU"))


@pytest.mark.slow  # the real network on real chips
def test_the_caller_can_cancel_a_run(dlib_network, tiny_people):
    train, validation = tiny_people
    result = fine_tune(dlib_network, train, validation, Parameters(epochs=3, identities_per_batch=8),
                       should_stop=lambda: True)
    assert result.cancelled and result.epochs == []


@pytest.mark.slow  # the real network on real chips
def test_a_prefix_that_names_no_layer_is_refused(dlib_network, tiny_people):
    train, validation = tiny_people
    with pytest.raises(ValueError, match="nothing would train"):
        fine_tune(dlib_network, train, validation, Parameters(trainable=("stage9",)))


def test_parameters_round_trip_through_json():
    parameters = Parameters(loss="semi_hard", squared=True, margin=0.1, trainable=("stage4", "stage5", "embedding"))
    assert Parameters.from_json(parameters.as_json()) == parameters
    assert Parameters.from_json({}) == Parameters()
    assert Parameters.from_json({"backbone": "resnet50"}) == Parameters.for_backbone("resnet50")
    assert Parameters.for_backbone("resnet50").learning_rate > Parameters().learning_rate


@pytest.mark.parametrize("values, message", [({"loss": "hardest"}, "loss must be"), ({"epochs": 0}, "epochs"),
                                             ({"backbone": "vgg"}, "backbone"), ({"speed": 3}, "Unknown")])
def test_bad_parameters_are_refused_in_plain_words(values, message):
    with pytest.raises(ValueError, match=message):
        Parameters.from_json(values)


@pytest.mark.slow  # builds and trains ResNet50 (small input, one epoch)
def test_the_resnet50_recipe_trains_a_network_the_embedder_can_use(tmp_path):
    rng = numpy.random.default_rng(0)
    labels = numpy.repeat(numpy.arange(6), 2)
    chips = rng.integers(0, 256, (len(labels), 150, 150, 3), dtype=numpy.uint8)
    people = data.LabelledChips(chips, labels, [f"person {index}" for index in range(6)])
    train, validation = people.subset(numpy.arange(8)), people.subset(numpy.arange(8, 12))
    parameters = Parameters.for_backbone("resnet50", epochs=1, input_size=32, identities_per_batch=4)
    result = finetune.train_resnet50(train, validation, parameters)
    assert [record["epoch"] for record in result.epochs] == [1]
    result.model.save(tmp_path / "resnet50.keras")
    assert Embedder.from_file(tmp_path / "resnet50.keras").embed(chips[:3]).shape == (3, 128)
