"""Reading dlib's serialisation format: primitives by hand, then the real face network file."""

import numpy
import pytest

from training import dlib_format
from training.dlib_import import dlib_model_path


def reader(data: bytes) -> dlib_format._Reader:
    return dlib_format._Reader(data)


@pytest.mark.parametrize(
    "data, value",
    [(b"\x01\x00", 0), (b"\x01\x96", 150), (b"\x02\x00\x01", 256), (b"\x81\x1c", -28)],
)
def test_it_reads_integers_as_dlib_writes_them(data, value):
    assert reader(data).integer() == value


def test_it_reads_a_float_as_mantissa_times_two_to_the_exponent():
    # 0xa3d70a * 2**-28 is dlib's float32 0.04, the loss layer's margin.
    assert reader(b"\x03\x0a\xd7\xa3\x81\x1c").real() == pytest.approx(0.04, abs=1e-9)


def test_it_reads_strings_booleans_and_tensors():
    assert reader(b"\x01\x05con_4").string() == "con_4"
    assert reader(b"1").boolean() is True
    values = numpy.array([1.5, -2.0], dtype="<f4")
    tensor = reader(b"\x01\x02" + b"\x01\x02\x01\x01\x01\x01\x01\x01" + values.tobytes()).tensor()
    assert tensor.shape == (2, 1, 1, 1)
    assert tensor.ravel().tolist() == [1.5, -2.0]


def test_it_refuses_a_truncated_value_in_plain_words():
    with pytest.raises(dlib_format.DlibFormatError, match="truncated"):
        reader(b"\x02\x00").integer()


def test_it_refuses_a_file_that_is_not_a_dlib_metric_network(tmp_path):
    other = tmp_path / "other.dat"
    other.write_bytes(b"\x01\x01\x01\x0bloss_mmod_x")
    with pytest.raises(dlib_format.DlibFormatError, match="not a dlib metric-learning network"):
        dlib_format.read_network(other)


def test_it_reads_the_whole_face_recognition_network():
    network = dlib_format.read_network(dlib_model_path())
    assert network.margin == pytest.approx(0.04, abs=1e-7)
    assert network.distance_threshold == pytest.approx(0.6, abs=1e-7)
    assert network.channel_means == pytest.approx((122.782, 117.001, 104.298), abs=1e-3)
    assert network.chip_size == 150
    convolutions = network.of_type(dlib_format.Convolution)
    assert len(convolutions) == 29
    assert len(network.of_type(dlib_format.Affine)) == 29
    assert network.layers.count("add") == 14
    assert convolutions[0].filters.shape == (32, 3, 7, 7)
    assert convolutions[0].strides == (2, 2)
    (fully_connected,) = network.of_type(dlib_format.FullyConnected)
    assert fully_connected.weights.shape == (256, 128)
    parameters = sum(c.filters.size + c.biases.size for c in convolutions)
    parameters += sum(a.gamma.size + a.beta.size for a in network.of_type(dlib_format.Affine))
    parameters += fully_connected.weights.size
    assert parameters == pytest.approx(5.6e6, rel=0.02)
