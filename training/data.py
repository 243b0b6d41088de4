"""Labelled face chips for training and for the quality gate: loading, caching, splitting, batching.

No Django here: callers pass folders and arrays. A chip is dlib's aligned 150x150 RGB face
(training.faces.Face.chip); a label is an identity's index into ``names``.

Detection is the slow part (about 0.05 s an LFW photo on one core, a second where dlib's CNN
detector has to look), so ``chips_from_folder`` keeps what it found in an .npz file keyed by the
exact files it read: a second run over the same photos takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy

from training import faces
from training.faces import CHIP_SIZE

logger = logging.getLogger(__name__)

# Part of every cache key: bump it when the way chips are cut changes, so old caches are not reused.
CACHE_FORMAT = "frid-chips-1"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".webp", ".gif", ".tif", ".tiff")
# LFW View 1's development test lists: the people a fine-tuned network must never train on.
DEV_TEST_PAIRS = Path("lfw-protocol") / "pairsDevTest.txt"
DEV_TEST_PEOPLE = Path("lfw-protocol") / "peopleDevTest.txt"


@dataclass
class LabelledChips:
    """Chips with one identity label each; ``names[label]`` is the identity's name, and every
    name is used by at least one chip. ``sources`` optionally says where each chip came from
    (a photo's path relative to its folder, a template's id): empty, or one per chip."""

    chips: numpy.ndarray  # (n, 150, 150, 3) uint8
    labels: numpy.ndarray  # (n,) int
    names: list[str]
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.chips = numpy.asarray(self.chips, dtype=numpy.uint8).reshape(-1, CHIP_SIZE, CHIP_SIZE, 3)
        self.labels = numpy.asarray(self.labels, dtype=numpy.int64).reshape(-1)
        self.names = list(self.names)
        self.sources = list(self.sources)
        if len(self.labels) != len(self.chips):
            raise ValueError(f"{len(self.chips)} chips but {len(self.labels)} labels: one label per chip.")
        if self.sources and len(self.sources) != len(self.chips):
            raise ValueError(f"{len(self.chips)} chips but {len(self.sources)} sources: none, or one per chip.")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.names)):
            raise ValueError(f"Labels must index the {len(self.names)} names.")

    def __len__(self) -> int:
        return len(self.chips)

    @property
    def identities(self) -> int:
        return len(self.names)

    def subset(self, indices: Sequence[int] | numpy.ndarray) -> "LabelledChips":
        """The chips at ``indices``, in that order; names no chip uses any more are dropped."""
        indices = numpy.asarray(indices, dtype=numpy.int64).reshape(-1)
        kept_labels = self.labels[indices]
        used = numpy.unique(kept_labels)
        relabel = numpy.full(max(len(self.names), 1), -1, dtype=numpy.int64)
        relabel[used] = numpy.arange(len(used))
        return LabelledChips(
            chips=self.chips[indices],
            labels=relabel[kept_labels],
            names=[self.names[label] for label in used],
            sources=[self.sources[index] for index in indices] if self.sources else [],
        )

    def images_per_identity(self) -> numpy.ndarray:
        return numpy.bincount(self.labels, minlength=len(self.names))


def empty() -> LabelledChips:
    return LabelledChips(numpy.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), numpy.uint8), numpy.zeros(0, numpy.int64), [])


def merge(*sets: LabelledChips) -> LabelledChips:
    """One set of all chips; identities with equal names are one identity (an employee who is also
    in a public folder, captures of a person beside their templates)."""
    if not sets:
        return empty()
    names: list[str] = []
    index_of: dict[str, int] = {}
    labels = []
    for chips in sets:
        for name in chips.names:
            if name not in index_of:
                index_of[name] = len(names)
                names.append(name)
        mapping = numpy.array([index_of[name] for name in chips.names] or [0], dtype=numpy.int64)
        labels.append(mapping[chips.labels])
    keep_sources = all(chips.sources or not len(chips) for chips in sets)
    return LabelledChips(
        chips=numpy.concatenate([chips.chips for chips in sets]),
        labels=numpy.concatenate(labels),
        names=names,
        sources=[source for chips in sets for source in chips.sources] if keep_sources else [],
    )


# --- Reading a folder of people --------------------------------------------------------------------


def chips_from_folder(
    root: str | os.PathLike[str],
    *,
    min_images: int = 2,
    exclude_names: Iterable[str] = (),
    only_names: Iterable[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[Iterable], Iterable] = iter,
) -> LabelledChips:
    """The central face of every photo under ``root`` (one sub-folder per person, the folder's name
    is the person's), labelled by person. Photos without a face, or unreadable, are skipped; people
    with fewer than ``min_images`` photos (before and after detection) are left out, as are
    ``exclude_names``; ``only_names`` keeps just those people. With ``cache_dir`` the result is
    kept there, keyed by the folder, the files chosen and their sizes and times: detection runs
    again only when a photo changes. ``progress`` wraps the photos being detected (e.g. tqdm)."""
    root = Path(root)
    photos = _photos_by_person(root, min_images, set(exclude_names), None if only_names is None else set(only_names))
    cache_path = _cache_path(Path(cache_dir), root, photos, min_images) if cache_dir else None
    if cache_path is not None and cache_path.exists():
        logger.info("chips of %s read from the cache %s", root, cache_path)
        return _read_cache(cache_path)
    chips = _detect_people(root, photos, min_images, progress)
    if cache_path is not None:
        _write_cache(cache_path, chips)
    return chips


def _photos_by_person(root: Path, min_images: int, exclude: set[str], only: set[str] | None) -> dict[str, list[Path]]:
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder of people (one sub-folder of photos per person).")
    people = {}
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        if folder.name in exclude or (only is not None and folder.name not in only):
            continue
        photos = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
        if len(photos) >= min_images:
            people[folder.name] = photos
    return people


def _cache_path(cache_dir: Path, root: Path, photos: dict[str, list[Path]], min_images: int) -> Path:
    digest = hashlib.sha256()
    digest.update(json.dumps([CACHE_FORMAT, str(root.resolve()), min_images]).encode())
    for name, paths in photos.items():
        for path in paths:
            status = path.stat()
            digest.update(f"\n{name}/{path.name}\t{status.st_size}\t{status.st_mtime_ns}".encode())
    return cache_dir / f"chips-{digest.hexdigest()[:24]}.npz"


def _detect_people(root: Path, photos: dict[str, list[Path]], min_images: int, progress) -> LabelledChips:
    chips, labels, names, sources = [], [], [], []
    skipped = 0
    work = [(name, path) for name, paths in photos.items() for path in paths]
    found: dict[str, list[tuple[numpy.ndarray, str]]] = {}
    for name, path in progress(work):
        chip = central_chip(path)
        if chip is None:
            skipped += 1
            continue
        found.setdefault(name, []).append((chip, path.relative_to(root).as_posix()))
    for name, person_chips in found.items():
        if len(person_chips) < min_images:
            continue
        for chip, source in person_chips:
            chips.append(chip)
            labels.append(len(names))
            sources.append(source)
        names.append(name)
    logger.info("%d chips of %d people from %s; %d photos without a face", len(chips), len(names), root, skipped)
    if not chips:
        return empty()
    return LabelledChips(numpy.stack(chips), numpy.array(labels), names, sources)


def central_chip(path: Path) -> numpy.ndarray | None:
    """The chip of the face nearest the photo's centre (the labelled person in LFW), or None."""
    try:
        image = faces.load_image(path)
    except faces.ImageError as error:
        logger.warning("skipping %s: %s", path, error)
        return None
    face = faces.central_face(faces.detect_faces(image), image.shape)
    return None if face is None else numpy.asarray(face.chip)


def _write_cache(path: Path, chips: LabelledChips) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    numpy.savez(temporary, chips=chips.chips, labels=chips.labels,
                names=numpy.array(chips.names, dtype=str), sources=numpy.array(chips.sources, dtype=str))
    os.replace(temporary, path)  # a run killed while writing leaves no half cache behind


def _read_cache(path: Path) -> LabelledChips:
    with numpy.load(path, allow_pickle=False) as stored:
        return LabelledChips(stored["chips"], stored["labels"], stored["names"].tolist(), stored["sources"].tolist())


# --- LFW's reference people ------------------------------------------------------------------------


def reference_people(faces_root: str | os.PathLike[str]) -> set[str]:
    """The people of LFW View 1's DevTest lists (pairsDevTest.txt, and peopleDevTest.txt where
    present): never trained on, so that the gate's reference set measures unseen faces."""
    root = Path(faces_root)
    people: set[str] = set()
    pairs = root / DEV_TEST_PAIRS
    if not pairs.exists():
        raise FileNotFoundError(f"{pairs} is missing: the reference people come from LFW's DevTest pairs.")
    for line in pairs.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 3:
            people.add(fields[0])
        elif len(fields) == 4:
            people.update((fields[0], fields[2]))
    listed = root / DEV_TEST_PEOPLE
    if listed.exists():
        people.update(fields[0] for fields in map(str.split, listed.read_text(encoding="utf-8").splitlines())
                      if len(fields) == 2 and not fields[0].isdigit())
    return people


def reference_chips(faces_root: str | os.PathLike[str], cache_dir=None, progress=iter) -> LabelledChips:
    """Every photo of the reference people (all of LFW DevTest's 2,741 images): the gate's fixed
    reference set, compared all pairs with all pairs."""
    root = Path(faces_root)
    return chips_from_folder(root / "lfw", min_images=1, only_names=reference_people(root),
                             cache_dir=cache_dir, progress=progress)


# --- Splits and batches ----------------------------------------------------------------------------


def split_by_identity(chips: LabelledChips, validation_share: float = 0.2, seed: int = 0) -> tuple[LabelledChips, LabelledChips]:
    """(train, validation): a random ``validation_share`` of the identities, with all their chips,
    is held out, so validation measures people the network never saw."""
    if not 0.0 < validation_share < 1.0:
        raise ValueError(f"The validation share must be between 0 and 1; got {validation_share!r}.")
    if chips.identities < 2:
        raise ValueError(f"Need at least two identities to split; got {chips.identities}.")
    order = numpy.random.default_rng(seed).permutation(chips.identities)
    held_out = min(max(1, round(validation_share * chips.identities)), chips.identities - 1)
    validation_people = numpy.zeros(chips.identities, dtype=bool)
    validation_people[order[:held_out]] = True
    in_validation = validation_people[chips.labels]
    return chips.subset(numpy.flatnonzero(~in_validation)), chips.subset(numpy.flatnonzero(in_validation))


def balanced_batches(
    labels: Sequence[int] | numpy.ndarray,
    identities_per_batch: int = 32,
    images_per_identity: int = 4,
    seed: int = 0,
) -> list[numpy.ndarray]:
    """One epoch of batches of chip indices: every identity with two or more chips appears once,
    in a batch of ``identities_per_batch`` identities with up to ``images_per_identity`` of its
    chips drawn at random (others' chips are drawn in other epochs: pass a new seed per epoch).
    Identities with one chip have no positive and are left out. A last batch of a single identity
    (no negatives) joins the one before it."""
    if identities_per_batch < 2 or images_per_identity < 2:
        raise ValueError("A batch needs at least 2 identities and 2 images of each to form triplets.")
    labels = numpy.asarray(labels).reshape(-1)
    rng = numpy.random.default_rng(seed)
    members = _indices_by_label(labels)
    anchors = [label for label, indices in members.items() if len(indices) >= 2]
    anchors = [anchors[index] for index in rng.permutation(len(anchors))]
    groups = [anchors[start:start + identities_per_batch] for start in range(0, len(anchors), identities_per_batch)]
    if len(groups) > 1 and len(groups[-1]) == 1:
        groups[-2].extend(groups.pop())
    return [
        numpy.concatenate([rng.permutation(members[label])[:images_per_identity] for label in group])
        for group in groups
        if len(group) >= 2
    ]


def _indices_by_label(labels: numpy.ndarray) -> dict[int, numpy.ndarray]:
    order = numpy.argsort(labels, kind="stable")
    values, starts = numpy.unique(labels[order], return_index=True)
    return {int(value): indices for value, indices in zip(values, numpy.split(order, starts[1:]))}

