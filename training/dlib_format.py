"""Reader for dlib's serialisation format, enough to load the face recognition ResNet.

dlib writes a network (``dlib::serialize(net, out)``) as a recursive walk of its layer
templates: first one version integer per layer from the output down to the input, then the
layer bodies in the opposite order, from the input up. Only layers with parameters or shape
(convolutions, affine, pooling, the final fully connected layer) write a body; tag and skip
layers write only their version, so the residual wiring is not in the file: it comes from the
network definition (see ``training.network``).

Primitive encodings (dlib/serialize.h):
- integer: a control byte whose low 4 bits give the number of magnitude bytes that follow and
  whose bit 0x80 means negative, then the magnitude little-endian (0 = ``01 00``).
- float: two integers, mantissa and exponent; the value is mantissa * 2**exponent.
- string: length, then the bytes.  Boolean: one ASCII byte, '0' or '1'.
- tensor: version (2), n, k, nr, nc, then n*k*nr*nc little-endian float32 values (NCHW).
  An "alias tensor" (version 1) has the same shape header and no data: it marks a slice of
  its layer's flat parameter tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy

LAYER_COUNT = 130  # the face ResNet: every add_layer, tag and skip, loss excluded


class DlibFormatError(ValueError):
    """The file is not the dlib network this reader understands."""


@dataclass(frozen=True)
class Convolution:
    filters: numpy.ndarray  # (num_filters, channels, rows, columns), dlib's layout
    biases: numpy.ndarray
    strides: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Affine:
    gamma: numpy.ndarray
    beta: numpy.ndarray


@dataclass(frozen=True)
class Pooling:
    kind: str  # "max" or "avg"
    window: tuple[int, int]  # (0, 0) pools everything
    strides: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class FullyConnected:
    weights: numpy.ndarray  # (inputs, outputs): out = x @ weights


@dataclass
class DlibNetwork:
    """The parsed file: what the loss layer says, the input layer and every layer body in order."""

    margin: float
    distance_threshold: float
    channel_means: tuple[float, float, float]  # R, G, B
    chip_size: int
    layers: list = field(default_factory=list)  # bodies from the input side, incl. "relu"/"add"

    def of_type(self, kind: type) -> list:
        return [layer for layer in self.layers if isinstance(layer, kind)]


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.position = 0

    def integer(self) -> int:
        control = self._take(1)[0]
        magnitude = int.from_bytes(self._take(control & 0x0F), "little")
        return -magnitude if control & 0x80 else magnitude

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        return float(mantissa) * 2.0**exponent

    def string(self) -> str:
        return self._take(self.integer()).decode("ascii")

    def boolean(self) -> bool:
        value = self._take(1)
        if value not in (b"0", b"1"):
            raise DlibFormatError(f"expected a boolean at byte {self.position - 1}")
        return value == b"1"

    def tensor(self) -> numpy.ndarray:
        version = self.integer()
        shape = tuple(self.integer() for _ in range(4))
        if version != 2:
            raise DlibFormatError(f"expected a data tensor (version 2), found version {version}")
        count = int(numpy.prod(shape))
        values = numpy.frombuffer(self._take(4 * count), dtype="<f4").astype(numpy.float32)
        return values.reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        version = self.integer()
        shape = tuple(self.integer() for _ in range(4))
        if version != 1:
            raise DlibFormatError(f"expected an alias tensor (version 1), found version {version}")
        return shape

    def at_end(self) -> bool:
        return self.position == len(self.data)

    def _take(self, count: int) -> bytes:
        end = self.position + count
        if end > len(self.data):
            raise DlibFormatError("the file ends in the middle of a value (truncated download?)")
        chunk = self.data[self.position:end]
        self.position = end
        return chunk


def read_network(path: Path | str) -> DlibNetwork:
    """Parse ``dlib_face_recognition_resnet_model_v1.dat`` into numpy arrays."""
    reader = _Reader(Path(path).read_bytes())
    _expect(reader.integer() == 1, "unknown loss layer version")
    _expect(reader.string() == "loss_metric_2", "this is not a dlib metric-learning network")
    margin = reader.real()
    distance_threshold = reader.real()
    versions = [reader.integer() for _ in range(LAYER_COUNT)]
    _expect(versions[-1] == 3, "the input add_layer should have version 3")

    _expect(reader.string() == "input_rgb_image_sized", "expected an RGB image input layer")
    channel_means = (reader.real(), reader.real(), reader.real())
    rows, columns = reader.integer(), reader.integer()
    _expect(rows == columns, "expected a square input")
    network = DlibNetwork(margin, distance_threshold, channel_means, rows)

    first = True
    while not reader.at_end():
        network.layers.append(_read_layer_body(reader))
        _read_layer_state(reader)
        if first:
            # Only the add_layer over the input also stores its sample expansion factor.
            _expect(reader.integer() == 1, "unexpected sample expansion factor")
            first = False
    return network


def _read_layer_body(reader: _Reader):
    name = reader.string()
    if name == "con_4":
        return _read_convolution(reader)
    if name == "affine_":
        params = reader.tensor().ravel()
        gamma_shape, beta_shape = reader.alias(), reader.alias()
        reader.integer()  # mode: per channel (the file uses convolution mode throughout)
        channels = int(numpy.prod(gamma_shape))
        _expect(channels == int(numpy.prod(beta_shape)), "affine gamma and beta differ in size")
        return Affine(gamma=params[:channels].copy(), beta=params[channels:].copy())
    if name in ("max_pool_2", "avg_pool_2"):
        window_rows, window_columns, stride_y, stride_x, pad_y, pad_x = (
            reader.integer() for _ in range(6)
        )
        return Pooling(
            kind=name[:3],
            window=(window_rows, window_columns),
            strides=(stride_y, stride_x),
            padding=(pad_y, pad_x),
        )
    if name == "fc_2":
        outputs, inputs = reader.integer(), reader.integer()
        params = reader.tensor()
        reader.alias()  # weights slice: all of params
        bias_shape = reader.alias()
        reader.integer()  # bias mode
        for _ in range(4):
            reader.real()  # learning-rate and weight-decay multipliers
        _expect(int(numpy.prod(bias_shape)) == 0, "expected a fully connected layer without bias")
        return FullyConnected(weights=params.reshape(inputs, outputs).copy())
    if name == "relu_":
        return "relu"
    if name == "add_prev_":
        return "add"
    raise DlibFormatError(f"unknown layer {name!r}")


def _read_convolution(reader: _Reader) -> Convolution:
    params = reader.tensor().ravel()
    num_filters, rows, columns, stride_y, stride_x, pad_y, pad_x = (
        reader.integer() for _ in range(7)
    )
    filter_shape, bias_shape = reader.alias(), reader.alias()
    for _ in range(4):
        reader.real()  # learning-rate and weight-decay multipliers: training only
    filter_count = int(numpy.prod(filter_shape))
    _expect(filter_shape[0] == num_filters and filter_shape[2:] == (rows, columns),
            "convolution filter shape disagrees with its header")
    _expect(int(numpy.prod(bias_shape)) == num_filters, "convolution bias size is wrong")
    return Convolution(
        filters=params[:filter_count].reshape(filter_shape).copy(),
        biases=params[filter_count:].copy(),
        strides=(stride_y, stride_x),
        padding=(pad_y, pad_x),
    )


def _read_layer_state(reader: _Reader) -> None:
    # add_layer's training state: three flags, then gradient/output tensors (empty in this file).
    for _ in range(3):
        reader.boolean()
    for _ in range(3):
        reader.tensor()


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise DlibFormatError(message)
