"""Benchmark: fine-tuning with the triplet loss on LFW people outside DevTest, measured by the gate.

    .venv/bin/python bench/fine_tune.py [--backbone dlib|resnet50] [--faces ../shared/faces]
        [--epochs N] [--learning-rate LR] [--margin M] [--loss batch_hard|semi_hard]
        [--trainable stage5,embedding] [--input-size 112]

Train on every LFW person not in View 1's DevTest lists with two photos or more, split by identity
(80% train, 20% validation); the reference set is every image of DevTest's people (2,741 images,
3.75 M pairs), never trained on. Before = dlib's network as imported; after = the candidate
(dlib fine-tuned, or ResNet50 from random weights). Rows: validation and reference TAR at FAR 1e-3
over all pairs, DevTest 10-fold accuracy on the 1,000 listed pairs, the gate's verdict, and the
time of each part. Chips are cached under var/cache/chips: the first run detects faces (minutes),
later runs read them back (seconds).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy  # noqa: E402

from training import data, evaluation, finetune, gate  # noqa: E402
from training.dlib_import import import_dlib_network  # noqa: E402


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", choices=finetune.BACKBONES, default="dlib")
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "chips")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--margin", type=float)
    parser.add_argument("--loss", choices=["batch_hard", "semi_hard"])
    parser.add_argument("--squared", action="store_true", help="Mine on the squared distance.")
    parser.add_argument("--trainable", help="Comma-separated layer-name prefixes (dlib).")
    parser.add_argument("--input-size", type=int, help="ResNet50's input size (chips are resized).")
    return parser.parse_args()


def parameters_from(options: argparse.Namespace) -> finetune.Parameters:
    changes = {name: value for name, value in (
        ("epochs", options.epochs), ("learning_rate", options.learning_rate), ("margin", options.margin),
        ("loss", options.loss), ("input_size", options.input_size),
        ("trainable", tuple(options.trainable.split(",")) if options.trainable else None),
    ) if value is not None}
    if options.squared:
        changes["squared"] = True
    return finetune.Parameters.for_backbone(options.backbone, **changes)


def measure(model, validation: data.LabelledChips, reference: data.LabelledChips, pairs) -> dict:
    """The gate's figures on both sets, and 10-fold accuracy on DevTest's listed pairs."""
    reference_embeddings = finetune.embed(model, reference.chips)
    figures = {
        "validation": gate.all_pairs_metrics(finetune.embed(model, validation.chips), validation.labels),
        "reference": gate.all_pairs_metrics(reference_embeddings, reference.labels),
    }
    row_of = {source: row for row, source in enumerate(reference.sources)}
    distances = numpy.array([
        numpy.linalg.norm(reference_embeddings[row_of[_source(pair.image_a)]] - reference_embeddings[row_of[_source(pair.image_b)]])
        for pair in pairs
    ])
    same = numpy.array([pair.same for pair in pairs])
    figures["devtest_10fold"] = evaluation.ten_fold_accuracy(distances, same)
    return figures


def _source(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    options = arguments()
    parameters = parameters_from(options)
    device = finetune.configure_tensorflow()
    started = time.monotonic()
    reference = data.reference_chips(options.faces, cache_dir=options.cache)
    pool = data.chips_from_folder(options.faces / "lfw", min_images=2, exclude_names=data.reference_people(options.faces),
                                  cache_dir=options.cache)
    chip_seconds = time.monotonic() - started
    train, validation = data.split_by_identity(pool, parameters.validation_share, parameters.seed)
    pairs = evaluation.read_pairs(options.faces / "lfw-protocol" / "pairsDevTest.txt", options.faces / "lfw")
    missing = [pair for pair in pairs if _source(pair.image_a) not in reference.sources or _source(pair.image_b) not in reference.sources]
    if missing:
        sys.exit(f"{len(missing)} DevTest pairs name a photo without a chip; cannot score them.")
    print(f"{device}; train {len(train)} chips of {train.identities} people, validation {len(validation)} of "
          f"{validation.identities}, reference {len(reference)} of {reference.identities}; "
          f"chips ready in {chip_seconds:.0f} s", flush=True)
    print(f"parameters: {parameters.as_json()}", flush=True)

    base, _ = import_dlib_network()
    before = measure(base, validation, reference, pairs)

    def report(epoch: int, epochs: int, record: dict) -> None:
        print(f"  epoch {epoch}/{epochs}: loss {record['loss']:.4f}, validation loss {record['validation_loss']:.4f}, "
              f"validation TAR {record['validation_tar']:.2%} ({record['seconds']:.0f} s)", flush=True)

    if parameters.backbone == "dlib":
        result = finetune.fine_tune(base, train, validation, parameters, on_epoch=report)
    else:
        result = finetune.train_resnet50(train, validation, parameters, on_epoch=report)
    print(f"  before training (as the run measured it): validation TAR {result.baseline['validation_tar']:.2%}", flush=True)
    after = measure(result.model, validation, reference, pairs)
    verdict = gate.judge(before, after)
    print_table(before, after, result, chip_seconds, time.monotonic() - started, options.backbone)
    print("\n".join(verdict.reasons))


def print_table(before: dict, after: dict, result: finetune.Result, chip_seconds: float, total: float, backbone: str) -> None:
    key = gate.tar_key()
    candidate = "dlib fine-tuned" if backbone == "dlib" else "ResNet50 (random init)"
    rows = [
        ("validation TAR @ FAR 1e-3 (all pairs)", f"{before['validation'][key]:.2%}", f"{after['validation'][key]:.2%}"),
        ("reference TAR @ FAR 1e-3 (all DevTest pairs)", f"{before['reference'][key]:.2%}", f"{after['reference'][key]:.2%}"),
        ("reference EER", f"{before['reference']['eer']:.2%}", f"{after['reference']['eer']:.2%}"),
        ("DevTest 10-fold accuracy (1,000 pairs)", "{:.2%} ± {:.2%}".format(*before["devtest_10fold"]),
         "{:.2%} ± {:.2%}".format(*after["devtest_10fold"])),
    ]
    print(f"\n| figure | dlib (base) | {candidate} |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    cache = result.timings.get("activation_cache_seconds")
    per_epoch = result.timings.get("seconds_per_epoch")
    print(f"\nbest epoch {result.best_epoch} of {len(result.epochs)} trained (stopped early: {result.stopped_early}); "
          f"pairs: validation {after['validation']['genuine_pairs']:,} genuine / {after['validation']['impostor_pairs']:,} "
          f"impostor, reference {after['reference']['genuine_pairs']:,} / {after['reference']['impostor_pairs']:,}")
    print(f"times: chips {chip_seconds:.0f} s, activation cache {cache:.0f} s, " if cache is not None else
          f"times: chips {chip_seconds:.0f} s, ", end="")
    print(f"training {per_epoch:.1f} s per epoch, fine-tuning in all {result.seconds:.0f} s, "
          f"whole benchmark {total:.0f} s ({result.device})")


if __name__ == "__main__":
    main()
