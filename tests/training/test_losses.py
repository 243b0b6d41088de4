import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.losses import (
    BatchHardTripletLoss,
    MinedTripletLossLayer,
    SemiHardTripletLoss,
    TripletLossLayer,
    batch_hard_triplet_loss,
    batch_semi_hard_triplet_loss,
    pairwise_squared_distances,
    triplet_loss,
    validate_margin,
)

# Four labelled 2-D points used by several tests, margin 2.
#   x0 = (0, 0) label 0      x2 = (0, 1) label 1
#   x1 = (2, 0) label 0      x3 = (0, 3) label 1
# Squared distances: d01 = 4, d02 = 1, d03 = 9, d12 = 5, d13 = 13, d23 = 4.
#
# Batch-hard (farthest positive, nearest negative, per anchor):
#   a0: 4 − min(1, 9)  + 2 = 5
#   a1: 4 − min(5, 13) + 2 = 1
#   a2: 4 − min(1, 5)  + 2 = 5
#   a3: 4 − min(9, 13) + 2 = −3 → 0          mean = 11 / 4 = 2.75
#
# Semi-hard (per pair, nearest negative with d_ap < d_an < d_ap + 2 = 6,
# else the nearest negative):
#   (0, 1): negatives 1, 9  → none in (4, 6) → nearest 1 → 4 − 1 + 2 = 5
#   (1, 0): negatives 5, 13 → 5              → 4 − 5 + 2 = 1
#   (2, 3): negatives 1, 5  → 5              → 4 − 5 + 2 = 1
#   (3, 2): negatives 9, 13 → none           → nearest 9 → 0
#                                              mean = 7 / 4 = 1.75
FOUR_POINTS = np.array([[0, 0], [2, 0], [0, 1], [0, 3]], dtype="float32")
FOUR_LABELS = np.array([0, 0, 1, 1], dtype="int32")
FOUR_MARGIN = 2.0


def brute_force_distances(embeddings):
    return np.array(
        [[np.sum((a - b) ** 2) for b in embeddings] for a in embeddings]
    )


def brute_force_batch_hard(labels, embeddings, margin, squared=True):
    distances = brute_force_distances(embeddings)
    if not squared:
        distances = np.sqrt(distances)
    losses = []
    for anchor in range(len(labels)):
        positives = [
            distances[anchor, other]
            for other in range(len(labels))
            if other != anchor and labels[other] == labels[anchor]
        ]
        negatives = [
            distances[anchor, other]
            for other in range(len(labels))
            if labels[other] != labels[anchor]
        ]
        if positives and negatives:
            losses.append(max(max(positives) - min(negatives) + margin, 0.0))
    return float(np.mean(losses)) if losses else 0.0


def brute_force_semi_hard(labels, embeddings, margin):
    """Returns the loss and how many pairs found a semi-hard negative / fell back."""
    distances = brute_force_distances(embeddings)
    losses, semi_hard_pairs, fallback_pairs = [], 0, 0
    for anchor, positive in itertools.permutations(range(len(labels)), 2):
        if labels[anchor] != labels[positive]:
            continue
        negatives = [
            distances[anchor, other]
            for other in range(len(labels))
            if labels[other] != labels[anchor]
        ]
        if not negatives:
            continue
        positive_distance = distances[anchor, positive]
        semi_hard = [
            d for d in negatives if positive_distance < d < positive_distance + margin
        ]
        if semi_hard:
            negative_distance = min(semi_hard)
            semi_hard_pairs += 1
        else:
            negative_distance = min(negatives)
            fallback_pairs += 1
        losses.append(max(positive_distance - negative_distance + margin, 0.0))
    loss = float(np.mean(losses)) if losses else 0.0
    return loss, semi_hard_pairs, fallback_pairs


def random_batch():
    """12 embeddings of 3 identities (4 each, shuffled), seeded."""
    generator = np.random.default_rng(20240517)
    labels = generator.permutation(np.repeat([3, 7, 11], 4)).astype("int32")
    embeddings = generator.normal(size=(12, 5)).astype("float32")
    return labels, embeddings


def test_triplet_loss_is_zero_when_the_negative_is_far_enough():
    # max(1 − 4 + 0.5, 0) = 0
    loss = triplet_loss(
        np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]]), 0.5
    )
    assert np.allclose(keras.ops.convert_to_numpy(loss), [0.0])


def test_triplet_loss_is_the_margin_when_the_negative_is_as_close_as_the_positive():
    # max(1 − 1 + 0.5, 0) = 0.5
    loss = triplet_loss(
        np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), 0.5
    )
    assert np.allclose(keras.ops.convert_to_numpy(loss), [0.5])


def test_triplet_loss_gives_one_value_per_triplet():
    anchors = np.array([[0.0, 0.0], [1.0, 1.0]], dtype="float32")
    positives = np.array([[1.0, 0.0], [1.0, 2.0]], dtype="float32")
    negatives = np.array([[0.0, 1.0], [4.0, 5.0]], dtype="float32")
    # first: 1 − 1 + 0.3 = 0.3; second: 1 − (9 + 16) + 0.3 < 0 → 0
    loss = triplet_loss(anchors, positives, negatives, 0.3)
    assert np.allclose(keras.ops.convert_to_numpy(loss), [0.3, 0.0])


@pytest.mark.parametrize(
    "margin", [0, -0.2, math.nan, math.inf, "0.2", None, True]
)
def test_it_rejects_a_margin_that_is_not_a_positive_finite_number(margin):
    with pytest.raises(ValueError, match="margin must be a positive"):
        validate_margin(margin)


def test_pairwise_squared_distances_match_the_hand_computed_matrix():
    expected = [
        [0, 4, 1, 9],
        [4, 0, 5, 13],
        [1, 5, 0, 4],
        [9, 13, 4, 0],
    ]
    distances = pairwise_squared_distances(FOUR_POINTS)
    assert np.allclose(keras.ops.convert_to_numpy(distances), expected)


def test_pairwise_squared_distances_are_never_negative():
    # Copies of one vector: the norms and the dot products are summed by
    # different kernels, so ‖x‖² − 2x·y + ‖y‖² rounds to small ± values.
    vector = np.random.default_rng(0).normal(size=(1, 64)) * 10
    embeddings = np.repeat(vector, 8, axis=0).astype("float32")
    distances = keras.ops.convert_to_numpy(pairwise_squared_distances(embeddings))
    assert (distances >= 0).all()


def test_pairwise_squared_distances_are_exactly_zero_on_the_diagonal():
    # Large random rows, where rounding leaves some ‖x‖² − 2x·x + ‖x‖² above 0.
    embeddings = np.random.default_rng(1).normal(size=(8, 64)) * 10
    distances = keras.ops.convert_to_numpy(
        pairwise_squared_distances(embeddings.astype("float32"))
    )
    assert (np.diag(distances) == 0).all()
    assert np.allclose(distances, brute_force_distances(embeddings), rtol=1e-4)


def test_batch_hard_loss_matches_the_hand_computed_value():
    loss = batch_hard_triplet_loss(FOUR_LABELS, FOUR_POINTS, FOUR_MARGIN)
    assert float(loss) == pytest.approx(2.75)


def test_semi_hard_loss_matches_the_hand_computed_value():
    loss = batch_semi_hard_triplet_loss(FOUR_LABELS, FOUR_POINTS, FOUR_MARGIN)
    assert float(loss) == pytest.approx(1.75)


def test_batch_hard_loss_leaves_out_anchors_without_a_positive():
    # A fifth point, alone with label 2, adds nothing as an anchor, but as a
    # negative it is far from everyone: (9, 9) is at least 72 away.
    points = np.vstack([FOUR_POINTS, [[9.0, 9.0]]]).astype("float32")
    labels = np.append(FOUR_LABELS, 2).astype("int32")
    assert float(batch_hard_triplet_loss(labels, points, FOUR_MARGIN)) == pytest.approx(2.75)
    assert float(
        batch_semi_hard_triplet_loss(labels, points, FOUR_MARGIN)
    ) == pytest.approx(1.75)


def test_mined_losses_equal_a_brute_force_computation_on_a_random_batch():
    labels, embeddings = random_batch()
    margin = 1.5
    expected_semi_hard, semi_hard_pairs, fallback_pairs = brute_force_semi_hard(
        labels, embeddings, margin
    )
    # The batch must exercise both the semi-hard choice and the fallback.
    assert semi_hard_pairs > 0 and fallback_pairs > 0
    assert float(batch_hard_triplet_loss(labels, embeddings, margin)) == pytest.approx(
        brute_force_batch_hard(labels, embeddings, margin), rel=1e-5
    )
    assert float(
        batch_semi_hard_triplet_loss(labels, embeddings, margin)
    ) == pytest.approx(expected_semi_hard, rel=1e-5)


@pytest.mark.parametrize(
    "labels",
    [[5, 5, 5, 5], [1, 2, 3, 4]],
    ids=["one identity: no negative", "all different: no positive"],
)
def test_mined_losses_are_zero_with_finite_gradients_when_no_triplet_is_valid(labels):
    labels = np.array(labels, dtype="int32")
    embeddings = tf.Variable(FOUR_POINTS)
    for mined_loss in (batch_hard_triplet_loss, batch_semi_hard_triplet_loss):
        with tf.GradientTape() as tape:
            loss = mined_loss(labels, embeddings, 0.2)
        gradient = tape.gradient(loss, embeddings)
        assert float(loss) == 0.0
        assert np.all(np.isfinite(gradient.numpy()))


def test_mined_losses_accept_labels_of_shape_batch_by_one():
    column = FOUR_LABELS.reshape(-1, 1)
    assert float(batch_hard_triplet_loss(column, FOUR_POINTS, FOUR_MARGIN)) == pytest.approx(2.75)
    assert float(
        batch_semi_hard_triplet_loss(column, FOUR_POINTS, FOUR_MARGIN)
    ) == pytest.approx(1.75)


def test_triplet_loss_layer_rejects_a_bad_margin():
    with pytest.raises(ValueError, match="positive finite number"):
        TripletLossLayer(margin=-1.0)
    with pytest.raises(ValueError, match="positive number"):
        TripletLossLayer(margin="big")


def test_triplet_loss_layer_returns_per_triplet_losses_and_adds_their_mean():
    layer = TripletLossLayer(margin=0.5)
    anchors = np.zeros((2, 2), dtype="float32")
    positives = np.array([[1.0, 0.0], [1.0, 0.0]], dtype="float32")
    negatives = np.array([[0.0, 2.0], [0.0, 1.0]], dtype="float32")
    losses = layer([anchors, positives, negatives])
    assert np.allclose(keras.ops.convert_to_numpy(losses), [0.0, 0.5])
    assert len(layer.losses) == 1
    assert float(layer.losses[0]) == pytest.approx(0.25)


def test_triplet_loss_layer_config_round_trips():
    layer = TripletLossLayer(margin=0.35, name="triplet")
    rebuilt = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert isinstance(rebuilt, TripletLossLayer)
    assert rebuilt.margin == 0.35
    assert rebuilt.name == "triplet"


def test_a_model_compiled_without_a_loss_trains_on_the_layer_loss():
    keras.utils.set_random_seed(7)
    anchor_input = keras.Input(shape=(2,))
    positive_input = keras.Input(shape=(2,))
    negative_input = keras.Input(shape=(2,))
    embed = keras.layers.Dense(2, use_bias=False)
    losses = TripletLossLayer(margin=1.0)(
        [embed(anchor_input), embed(positive_input), embed(negative_input)]
    )
    model = keras.Model([anchor_input, positive_input, negative_input], losses)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05))

    # Toy problem: positives are the anchor nudged along x, negatives along y.
    generator = np.random.default_rng(3)
    anchors = generator.normal(size=(16, 2)).astype("float32")
    positives = anchors + np.array([0.3, 0.0], dtype="float32")
    negatives = anchors + np.array([0.0, 0.3], dtype="float32")
    inputs = [anchors, positives, negatives]

    loss_before = float(np.mean(model.predict(inputs, verbose=0)))
    reported = model.fit(inputs, epochs=1, batch_size=16, verbose=0).history["loss"][0]
    loss_after = float(np.mean(model.predict(inputs, verbose=0)))

    # fit reports the add_loss value computed before its update step.
    assert reported == pytest.approx(loss_before, rel=1e-5)
    assert loss_before > 0
    assert loss_after < loss_before


@pytest.mark.parametrize("loss_class", [BatchHardTripletLoss, SemiHardTripletLoss])
def test_mining_loss_classes_reject_a_bad_margin(loss_class):
    with pytest.raises(ValueError, match="margin must be a positive"):
        loss_class(margin=0.0)


@pytest.mark.parametrize("loss_class", [BatchHardTripletLoss, SemiHardTripletLoss])
def test_mining_loss_classes_reject_labels_that_are_not_one_per_embedding(loss_class):
    with pytest.raises(ValueError, match=r"shape \(batch,\) or \(batch, 1\)"):
        loss_class(margin=0.2)(np.zeros((4, 2)), FOUR_POINTS)
    with pytest.raises(ValueError, match="3 labels for 4 embeddings"):
        loss_class(margin=0.2)(np.zeros(3), FOUR_POINTS)


def test_mining_loss_classes_refuse_sample_weights():
    with pytest.raises(ValueError, match="do not take sample weights"):
        BatchHardTripletLoss(margin=0.2)(FOUR_LABELS, FOUR_POINTS, sample_weight=np.ones(4))


def test_mining_loss_classes_give_the_hand_computed_values():
    assert float(BatchHardTripletLoss(FOUR_MARGIN)(FOUR_LABELS, FOUR_POINTS)) == pytest.approx(2.75)
    assert float(SemiHardTripletLoss(FOUR_MARGIN)(FOUR_LABELS, FOUR_POINTS)) == pytest.approx(1.75)


@pytest.mark.parametrize("loss_class", [BatchHardTripletLoss, SemiHardTripletLoss])
def test_mining_loss_classes_config_round_trips(loss_class):
    loss = loss_class(margin=0.3, name="mined")
    rebuilt = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert isinstance(rebuilt, loss_class)
    assert rebuilt.margin == 0.3
    assert rebuilt.name == "mined"


def test_a_model_trains_on_identity_labels_with_the_batch_hard_loss():
    keras.utils.set_random_seed(11)
    labels, embeddings = random_batch()
    model = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(3)])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01),
        loss=BatchHardTripletLoss(margin=1.0),
    )
    outputs_before = model.predict(embeddings, verbose=0)
    loss_before = model.evaluate(embeddings, labels, batch_size=12, verbose=0)
    model.fit(embeddings, labels, epochs=1, batch_size=12, shuffle=False, verbose=0)
    loss_after = model.evaluate(embeddings, labels, batch_size=12, verbose=0)
    # Keras passes the (B,) labels through to the loss unchanged.
    assert loss_before == pytest.approx(
        brute_force_batch_hard(labels, outputs_before, 1.0), rel=1e-5
    )
    assert loss_before > 0
    assert loss_after < loss_before


# The same four points with plain Euclidean distances, margin 0.5:
#   d01 = 2, d02 = 1, d03 = 3, d12 = √5, d13 = √13, d23 = 2.
# Batch-hard: a0: 2 − 1 + 0.5 = 1.5;  a1: 2 − √5 + 0.5;  a2: 2 − 1 + 0.5 = 1.5;
#             a3: 2 − 3 + 0.5 < 0 → 0                       mean = (5.5 − √5) / 4
# Semi-hard (d_ap < d_an < d_ap + 0.5, else the nearest negative):
#   (0, 1): negatives 1, 3 → none → 1 → 1.5     (1, 0): √5 → 2.5 − √5
#   (2, 3): negatives 1, √5 → √5 → 2.5 − √5     (3, 2): negatives 3, √13 → none → 3 → 0
#                                                mean = (6.5 − 2√5) / 4
RAW_MARGIN = 0.5
RAW_BATCH_HARD = (5.5 - math.sqrt(5)) / 4
RAW_SEMI_HARD = (6.5 - 2 * math.sqrt(5)) / 4


def test_batch_hard_loss_on_plain_distances_matches_the_hand_computed_value():
    loss = batch_hard_triplet_loss(FOUR_LABELS, FOUR_POINTS, RAW_MARGIN, squared=False)
    assert float(loss) == pytest.approx(RAW_BATCH_HARD, rel=1e-5)


def test_semi_hard_loss_on_plain_distances_matches_the_hand_computed_value():
    loss = batch_semi_hard_triplet_loss(FOUR_LABELS, FOUR_POINTS, RAW_MARGIN, squared=False)
    assert float(loss) == pytest.approx(RAW_SEMI_HARD, rel=1e-5)


def test_plain_distances_give_finite_gradients_when_two_embeddings_are_identical():
    # Identical rows have distance 0, where the square root's gradient is infinite.
    embeddings = tf.Variable(np.array([[0, 0], [0, 0], [0, 1], [0, 3]], dtype="float32"))
    for mined_loss in (batch_hard_triplet_loss, batch_semi_hard_triplet_loss):
        with tf.GradientTape() as tape:
            loss = mined_loss(FOUR_LABELS, embeddings, RAW_MARGIN, squared=False)
        assert np.all(np.isfinite(tape.gradient(loss, embeddings).numpy()))


@pytest.mark.parametrize(
    "mining, squared, expected",
    [("batch_hard", False, RAW_BATCH_HARD), ("semi_hard", False, RAW_SEMI_HARD),
     # squared, margin 0.5: a0 4 − 1 + 0.5, a1 4 − 5 + 0.5 < 0, a2 4 − 1 + 0.5, a3 4 − 9 + 0.5 < 0
     ("batch_hard", True, 7 / 4)],
)
def test_mined_triplet_loss_layer_adds_the_mined_loss_and_passes_the_embeddings_through(mining, squared, expected):
    layer = MinedTripletLossLayer(margin=RAW_MARGIN, mining=mining, squared=squared)
    outputs = layer([FOUR_POINTS, FOUR_LABELS])
    assert np.array_equal(keras.ops.convert_to_numpy(outputs), FOUR_POINTS)
    assert len(layer.losses) == 1
    assert float(layer.losses[0]) == pytest.approx(expected, rel=1e-5)


def test_mined_triplet_loss_layer_measures_plain_distances_by_default():
    layer = MinedTripletLossLayer(margin=RAW_MARGIN)
    layer([FOUR_POINTS, FOUR_LABELS])
    assert float(layer.losses[0]) == pytest.approx(RAW_BATCH_HARD, rel=1e-5)


def test_mined_triplet_loss_layer_rejects_an_unknown_mining():
    with pytest.raises(ValueError, match="batch_hard, semi_hard"):
        MinedTripletLossLayer(mining="hardest")


def test_mined_triplet_loss_layer_config_round_trips():
    layer = MinedTripletLossLayer(margin=0.1, mining="semi_hard", squared=True, name="mined")
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(rebuilt, MinedTripletLossLayer)
    assert (rebuilt.margin, rebuilt.mining, rebuilt.squared, rebuilt.name) == (0.1, "semi_hard", True, "mined")


def test_a_model_with_labels_as_input_trains_on_the_mined_layer_loss():
    keras.utils.set_random_seed(5)
    labels, points = random_batch()
    features = keras.Input(shape=(5,), name="features")
    identities = keras.Input(shape=(), dtype="int32", name="labels")
    embeddings = keras.layers.Dense(3)(features)
    embedding_model = keras.Model(features, embeddings)
    model = keras.Model([features, identities], MinedTripletLossLayer(margin=1.0)([embeddings, identities]))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01))
    inputs = {"features": points, "labels": labels}
    expected = brute_force_batch_hard(labels, embedding_model(points).numpy(), 1.0, squared=False)
    first = model.train_on_batch(inputs)
    for _ in range(20):
        last = model.train_on_batch(inputs)
    # train_on_batch reports the loss before its update: the mined loss of the initial embeddings.
    assert first == pytest.approx(expected, rel=1e-4)
    assert last < first
