"""The quality gate: all-pairs figures, the decision's rules, its plots, and a wrecked run rejected."""

import json

import numpy
import pytest

from training import data, evaluation, gate
from training.finetune import Parameters, embed, fine_tune

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_all_pairs_metrics_count_every_two_images_once_and_read_the_hand_computed_rates():
    # Genuine distances: 1 (person 0) and 0.5 (person 1); impostor distances 4, 4.5, 5, 5.5.
    embeddings = numpy.array([[0.0], [1.0], [5.0], [5.5]])
    metrics = gate.all_pairs_metrics(embeddings, [0, 0, 1, 1], fars=(1e-3, 0.5))
    assert (metrics["genuine_pairs"], metrics["impostor_pairs"], metrics["images"], metrics["identities"]) == (2, 4, 4, 2)
    # No impostor may pass at 1e-3 of 4 pairs: the threshold sits just below 4, both genuine pass.
    assert metrics["tar_at_far_1e-3"] == 1.0
    assert metrics["threshold_at_far_1e-3"] == pytest.approx(4.0)
    assert metrics["tar_at_far_0.5"] == 1.0 and metrics["threshold_at_far_0.5"] == pytest.approx(5.0)
    assert metrics["eer"] == 0.0
    json.dumps(metrics)  # stored as JSON on the run


def test_all_pairs_metrics_agree_with_the_pair_by_pair_evaluation_whatever_the_block_size(monkeypatch):
    rng = numpy.random.default_rng(4)
    labels = rng.integers(0, 12, 60)
    embeddings = rng.normal(size=(60, 8)) + labels[:, None] * 0.3
    whole = gate.all_pairs_metrics(embeddings, labels, fars=(1e-2,))
    monkeypatch.setattr(gate, "BLOCK_ROWS", 7)
    assert gate.all_pairs_metrics(embeddings, labels, fars=(1e-2,)) == whole

    pairs = [(i, j) for i in range(60) for j in range(i + 1, 60)]
    distances = numpy.array([numpy.linalg.norm(embeddings[i] - embeddings[j]) for i, j in pairs])
    same = numpy.array([labels[i] == labels[j] for i, j in pairs])
    assert whole["genuine_pairs"] == same.sum() and whole["impostor_pairs"] == (~same).sum()
    assert whole["tar_at_far_1e-2"] == evaluation.tar_at_far(distances, same, 1e-2)[0]
    assert whole["eer"] == pytest.approx(evaluation.equal_error_rate(distances, same)[0], abs=0.02)


def test_an_embedding_that_is_not_finite_makes_its_pairs_non_matches():
    embeddings = numpy.array([[0.0], [0.1], [numpy.nan], [3.0], [3.1], [9.0]])
    metrics = gate.all_pairs_metrics(embeddings, [0, 0, 0, 1, 1, 2])
    assert metrics["genuine_pairs"] == 4
    assert metrics["tar_at_far_1e-3"] == 0.5  # 0-1 and 3-4 match; both pairs with the NaN do not


def figures(validation: float, reference: float) -> dict:
    return {"validation": {"tar_at_far_1e-3": validation}, "reference": {"tar_at_far_1e-3": reference}}


@pytest.mark.parametrize("after, accepted", [
    (figures(0.951, 0.925), True),    # better on validation, reference 0.1 points lower
    (figures(0.951, 0.924), True),    # reference exactly 0.2 points lower: still allowed
    (figures(0.951, 0.935), True),    # better on both
    (figures(0.950, 0.930), False),   # validation only equal
    (figures(0.940, 0.940), False),   # validation worse
    (figures(0.951, 0.923), False),   # reference 0.3 points lower
])
def test_the_gate_accepts_only_a_rise_on_validation_with_at_most_a_small_fall_on_the_reference(after, accepted):
    verdict = gate.judge(figures(0.950, 0.926), after)
    assert verdict.accepted is accepted
    assert verdict.figures["validation"]["before"] == 0.950
    assert verdict.figures["reference"]["change"] == pytest.approx(after["reference"]["tar_at_far_1e-3"] - 0.926)
    assert verdict.reasons[-1].startswith("Accepted" if accepted else "Rejected")
    json.dumps(verdict.as_json())


def test_a_rejection_says_which_rule_failed_in_plain_words():
    verdict = gate.judge(figures(0.95, 0.93), figures(0.95, 0.92))
    assert "It must rise to be accepted." in verdict.reasons[0]
    assert "fell from 93.00% to 92.00% (-1.00 points). It may fall by at most 0.20 points." in verdict.reasons[1]


def test_the_plots_are_png_images():
    rng = numpy.random.default_rng(0)
    labels = numpy.repeat(numpy.arange(10), 5)
    metrics = {part: gate.all_pairs_metrics(rng.normal(size=(50, 4)) + labels[:, None], labels)
               for part in ("validation", "reference")}
    assert gate.plot_roc(metrics, metrics).startswith(PNG_SIGNATURE)
    epochs = [{"epoch": 1, "loss": 0.3, "validation_loss": 0.35, "validation_tar": 0.9},
              {"epoch": 2, "loss": 0.2, "validation_loss": 0.33, "validation_tar": 0.92}]
    assert gate.plot_losses(epochs).startswith(PNG_SIGNATURE)
    assert gate.plot_losses(epochs, best_epoch=1).startswith(PNG_SIGNATURE)


@pytest.mark.slow
def test_a_learning_rate_that_wrecks_the_network_is_rejected_by_the_gate(dlib_network, faces_dir):
    root = faces_dir / "lfw"
    four = sorted(folder.name for folder in root.iterdir() if len(list(folder.glob("*.jpg"))) == 4)
    chips = data.chips_from_folder(root, min_images=4, only_names=four[::6][:16])
    train, validation, reference = (chips.subset(numpy.flatnonzero((chips.labels >= low) & (chips.labels < high)))
                                    for low, high in ((0, 8), (8, 12), (12, 16)))
    wrecking = Parameters(learning_rate=1.0, epochs=2, patience=2, identities_per_batch=8)
    candidate = fine_tune(dlib_network, train, validation, wrecking).model

    def measured(model) -> dict:
        return {name: gate.all_pairs_metrics(embed(model, part.chips), part.labels)
                for name, part in (("validation", validation), ("reference", reference))}

    before, after = measured(dlib_network), measured(candidate)
    verdict = gate.judge(before, after)
    assert not verdict.accepted
    assert after["validation"]["tar_at_far_1e-3"] < before["validation"]["tar_at_far_1e-3"]
