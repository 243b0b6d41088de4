"""What evaluate_model and calibrate_model share: their pair-list arguments, the version they
score, and embedding the listed images with a progress bar."""

import sys
from pathlib import Path

from django.core.management.base import CommandError
from tqdm import tqdm

from training import evaluation
from training.engine import FaceEngine, FileEmbeddings
from training.models import ModelVersion


def add_pair_arguments(parser) -> None:
    parser.add_argument("--pairs", required=True, type=Path, help="LFW pairs file or CSV (image_a,image_b,same).")
    parser.add_argument("--images", required=True, type=Path, help="Folder the pair paths are relative to.")
    parser.add_argument("--model", help="Model version name (default: the active version).")


def model_version(name: str | None) -> ModelVersion:
    try:
        return ModelVersion.objects.get(name=name) if name else ModelVersion.objects.active()
    except ModelVersion.DoesNotExist as error:
        known = ", ".join(ModelVersion.objects.values_list("name", flat=True)) or "none"
        problem = f"No model version {name!r}" if name else str(error)
        raise CommandError(f"{problem} (known versions: {known})") from error


def read_pairs(options) -> list[evaluation.Pair]:
    try:
        pairs = evaluation.read_pairs(options["pairs"], options["images"])
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from error
    if not pairs:
        raise CommandError(f"{options['pairs']} lists no pairs.")
    return pairs


def images_of(pairs: list[evaluation.Pair]) -> list[Path]:
    return sorted({path for pair in pairs for path in (pair.image_a, pair.image_b)})


def embed_images(version: ModelVersion, images: list[Path], label: str = "FRID", no_face: str = "fail") -> FileEmbeddings:
    return embed_images_with([version], images, label=label, no_face=no_face)[0]


def embed_images_with(versions: list[ModelVersion], images: list[Path], label: str = "FRID",
                      no_face: str = "fail") -> list[FileEmbeddings]:
    """Each version's embeddings of the images, faces detected once for all of them."""
    found = FaceEngine(versions[0].embedder()).file_chips(images, no_face=no_face, progress=progress_bar(label))
    return [FaceEngine(version.embedder()).embed_file_chips(found) for version in versions]


def progress_bar(label: str):
    def wrap(items):
        # On stderr, and only on a terminal: logs and JSON on stdout stay clean.
        return tqdm(items, desc=f"{label}: finding faces", unit="image", file=sys.stderr, disable=None, mininterval=2)

    return wrap
