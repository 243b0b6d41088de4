"""The Keras network with imported weights gives dlib's own descriptors."""

import keras
import numpy
import pytest

from training.network import CHIP_SIZE, EMBEDDING_SIZE
from training.reference import dlib_chip_descriptors


@pytest.mark.slow
def test_it_reproduces_dlibs_descriptors_on_real_lfw_chips(dlib_network, lfw_chips):
    assert len(lfw_chips) >= 50
    ours = dlib_network(lfw_chips.astype(numpy.float32), training=False).numpy()
    theirs = dlib_chip_descriptors(lfw_chips)
    assert numpy.abs(ours - theirs).max() <= 1e-5


def test_it_has_dlibs_shape_and_size(dlib_network):
    assert dlib_network.input_shape == (None, CHIP_SIZE, CHIP_SIZE, 3)
    assert dlib_network.output_shape == (None, EMBEDDING_SIZE)
    # 5.6 M weights; the identity convolutions that pad channels are fixed, not trained.
    assert dlib_network.count_params() - sum(
        w.numpy().size for w in dlib_network.non_trainable_weights
    ) == pytest.approx(5.6e6, rel=0.02)


def test_a_saved_network_loads_back_with_the_same_outputs(dlib_network, lfw_chips, tmp_path):
    dlib_network.save(tmp_path / "network.keras")
    loaded = keras.models.load_model(tmp_path / "network.keras", compile=False)
    chips = lfw_chips[:4].astype(numpy.float32)
    numpy.testing.assert_array_equal(
        loaded(chips, training=False).numpy(), dlib_network(chips, training=False).numpy()
    )


def test_feeding_bgr_instead_of_rgb_gives_different_descriptors(dlib_network, lfw_chips):
    # The channel order matters and fails silently: this is why the input layer is fixed to RGB.
    chips = lfw_chips[:4].astype(numpy.float32)
    rgb = dlib_network(chips, training=False).numpy()
    bgr = dlib_network(chips[..., ::-1].copy(), training=False).numpy()
    assert numpy.linalg.norm(rgb - bgr, axis=1).min() > 0.05
