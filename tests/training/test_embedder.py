"""Batched embedding with a tf.function, with and without the mirror image."""

import numpy
import pytest

from training.embedder import Embedder


@pytest.fixture(scope="module")
def embedders(dlib_network):
    return Embedder(dlib_network, mirror=False, batch_size=8), Embedder(dlib_network, mirror=True, batch_size=8)


def test_it_embeds_in_batches_the_same_as_one_by_one(embedders, lfw_chips):
    plain, _ = embedders
    together = plain.embed(lfw_chips[:20])  # 8 + 8 + 4
    alone = numpy.concatenate([plain.embed(chip) for chip in lfw_chips[:20]])
    assert together.shape == (20, 128)
    numpy.testing.assert_allclose(together, alone, atol=1e-5)


def test_it_matches_the_network_called_directly(embedders, dlib_network, lfw_chips):
    plain, _ = embedders
    expected = dlib_network(lfw_chips[:3].astype(numpy.float32), training=False).numpy()
    numpy.testing.assert_allclose(plain.embed(lfw_chips[:3]), expected, atol=1e-5)


def test_a_mirrored_embedding_is_the_mean_of_the_chip_and_its_mirror_image(embedders, lfw_chips):
    plain, mirrored = embedders
    chips = lfw_chips[:3]
    expected = (plain.embed(chips) + plain.embed(chips[:, :, ::-1])) / 2
    numpy.testing.assert_allclose(mirrored.embed(chips), expected, atol=1e-5)


def test_it_refuses_chips_of_the_wrong_size(embedders):
    plain, _ = embedders
    with pytest.raises(ValueError, match="150x150 RGB"):
        plain.embed(numpy.zeros((1, 112, 112, 3), dtype=numpy.uint8))


def test_no_chips_give_no_embeddings(embedders):
    plain, _ = embedders
    assert plain.embed(numpy.zeros((0, 150, 150, 3), dtype=numpy.uint8)).shape == (0, 128)
