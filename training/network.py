"""The embedding network: dlib's face recognition ResNet, rebuilt from standard Keras layers.

The topology follows dlib's ``examples/dnn_face_recognition_ex.cpp`` (29 convolutions, 14
residual blocks, 5.6 M parameters):

    150x150 RGB chip -> conv 7x7/2 -> max pool 3x3/2 -> 3 blocks of 32 channels
    -> downsampling stages of 64 (4 blocks), 128 (3), 256 (3), 256 (1)
    -> global average pool -> fully connected 128 (no bias)

dlib follows every convolution with an "affine" layer (a frozen batch norm: gamma * x + beta per
channel); here it is folded into the convolution's kernel and bias, which is exact algebra and
saves a layer per convolution. Two dlib details that are easy to get wrong, each giving wrong
descriptors without any error:
- A residual add whose inputs differ in shape zero-pads the smaller one at the END of each
  dimension: extra channels of the shortcut, and the bottom/right row and column of the
  convolution branch in the last two stages (3x3 against 4x4, 1x1 against 2x2).
- Input is (RGB - channel mean) / 256, not / 255, and not BGR.

The output is dlib's descriptor: not L2-normalised; distances are Euclidean and dlib's own
threshold is 0.6.
"""

from __future__ import annotations

import keras
import numpy

CHIP_SIZE = 150
EMBEDDING_SIZE = 128

# (channels, blocks, the first block halves the resolution)
STAGES = (
    (32, 3, False),
    (64, 4, True),
    (128, 3, True),
    (256, 3, True),
    (256, 1, True),
)


def build_embedding_network(channel_means: tuple[float, float, float]) -> keras.Model:
    """The untrained network; ``training.dlib_import`` fills in dlib's weights."""
    chips = keras.Input(shape=(CHIP_SIZE, CHIP_SIZE, 3), name="chip")
    x = keras.layers.Normalization(
        mean=list(channel_means), variance=[256.0**2] * 3, name="normalise"
    )(chips)
    x = keras.layers.Conv2D(32, 7, strides=2, padding="valid", name="stem_conv")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="stem_pool")(x)

    for stage, (channels, blocks, downsample) in enumerate(STAGES, start=1):
        for block in range(1, blocks + 1):
            x = _residual_block(x, channels, downsample and block == 1, f"stage{stage}_block{block}")

    x = keras.layers.GlobalAveragePooling2D(name="average_pool")(x)
    embeddings = keras.layers.Dense(EMBEDDING_SIZE, use_bias=False, name="embedding")(x)
    return keras.Model(chips, embeddings, name="frid_embedding")


def convolutions_in_dlib_order(model: keras.Model) -> list[keras.layers.Conv2D]:
    """The trainable convolutions in the order dlib stores them (input side first)."""
    return [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D) and not layer.name.endswith("_pad_channels")
    ]


def _residual_block(x, channels: int, downsample: bool, name: str):
    stride = 2 if downsample else 1
    # dlib pads 3x3 stride-1 convolutions by 1 and stride-2 ones not at all.
    branch = keras.layers.Conv2D(
        channels, 3, strides=stride, padding="valid" if downsample else "same", name=f"{name}_conv_a"
    )(x)
    branch = keras.layers.ReLU(name=f"{name}_relu_a")(branch)
    branch = keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv_b")(branch)

    shortcut = x
    if downsample:
        shortcut = keras.layers.AveragePooling2D(2, strides=2, padding="valid", name=f"{name}_pool")(x)
    if shortcut.shape[-1] != channels:
        shortcut = _pad_channels(shortcut, channels, f"{name}_pad_channels")
    missing_rows = shortcut.shape[1] - branch.shape[1]
    missing_columns = shortcut.shape[2] - branch.shape[2]
    if missing_rows or missing_columns:
        branch = keras.layers.ZeroPadding2D(
            ((0, missing_rows), (0, missing_columns)), name=f"{name}_pad_spatial"
        )(branch)

    x = keras.layers.Add(name=f"{name}_add")([branch, shortcut])
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _pad_channels(x, channels: int, name: str):
    """Append zero channels with a fixed 1x1 identity convolution (standard, saveable layers)."""
    existing = x.shape[-1]
    layer = keras.layers.Conv2D(channels, 1, use_bias=False, trainable=False, name=name)
    padded = layer(x)
    identity = numpy.zeros((1, 1, existing, channels), dtype=numpy.float32)
    identity[0, 0, numpy.arange(existing), numpy.arange(existing)] = 1.0
    layer.set_weights([identity])
    return padded
