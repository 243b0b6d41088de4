"""The face engine: photo -> faces -> quality -> aligned chips -> embeddings.

``training.faces`` finds and aligns faces (dlib, Pillow); ``training.embedder`` runs the
network (TensorFlow). This module joins them: ``analyse_photos`` is the one road from uploaded
photos to usable faces and their embeddings (enrollment, bulk import and live verification all
take it), ``embed_files`` the one for labelled files (evaluation), both batching the network calls.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy

from training import faces

if TYPE_CHECKING:  # the embedder imports TensorFlow; whoever builds an engine has loaded it
    from training.embedder import Embedder

logger = logging.getLogger(__name__)

NO_FACE_POLICIES = ("fail", "center")

NO_FACE_REASON = (
    "No face was found in this photo. Use a photo where the face is clearly visible, facing the "
    "camera, in good light."
)
NO_LIVE_FACE_REASON = "No face found. Come closer and face the camera, in good light."
SEVERAL_FACES_REASON = (
    "This photo shows {count} faces. Use a photo of the person alone, or crop the others out."
)
SEVERAL_LIVE_FACES_REASON = "{count} faces are in view. One person at a time, please: step up alone."
# In a live frame, faces narrower than this share of the largest one, or cut by the frame's edge,
# are people passing behind, not a second person at the camera.
BYSTANDER_SHARE = 0.6


@dataclass(frozen=True, eq=False)
class PhotoAnalysis:
    """One photo: every face found, and the one usable face with its embedding, or why there is
    none (``problem``, in plain words with what to do)."""

    faces: list[faces.Face]
    face: faces.Face | None = None
    embedding: numpy.ndarray | None = None
    problem: str = ""

    def as_json(self) -> dict:
        face = self.face or (self.faces[0] if len(self.faces) == 1 else None)
        return {
            "faces": len(self.faces),
            "problem": self.problem,
            "embedding": None if self.embedding is None else [float(value) for value in self.embedding],
            "quality": None if face is None else quality_figures(face.quality),
            "box": None if face is None else [int(value) for value in face.box],
        }


def quality_figures(quality: faces.Quality) -> dict:
    return {
        "face_size": quality.face_size,
        "sharpness": round(quality.sharpness, 1),
        "brightness": round(quality.brightness, 1),
        "yaw": round(quality.yaw, 1),
        "pitch": round(quality.pitch, 1),
        "roll": round(quality.roll, 1),
    }


@dataclass(frozen=True, eq=False)
class EmbeddedFace:
    face: faces.Face
    embedding: numpy.ndarray


@dataclass
class FileEmbeddings:
    """Embeddings of the labelled face of each file; None where there was none to embed."""

    embeddings: dict[Path, numpy.ndarray | None]
    no_face: list[Path]  # no face detected (embedded from a centre guess when so asked)
    unreadable: dict[Path, str]  # the file could not be decoded: why

    @property
    def failed(self) -> set[Path]:
        return {path for path, embedding in self.embeddings.items() if embedding is None}


@dataclass
class FileChips:
    """Photos' central faces, detected and aligned, before any network has embedded them."""

    files: FileEmbeddings  # every photo, embedding None; no_face and unreadable filled in
    paths: list[Path]  # the photos that gave a chip ...
    chips: list[numpy.ndarray]  # ... and their chips, in the same order


# Decoding, detection and landmarks run on one thread per core: dlib and Pillow let go of the GIL
# while they work, so a batch of photos (a bulk import's, a liveness check's frames) takes about
# 1/cores of the time. The network then embeds the usable faces in one batch.
_THREADS = os.cpu_count() or 1
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _on_every_core(function: Callable, items: Sequence) -> list:
    global _pool
    if len(items) < 2 or _THREADS < 2:
        return [function(item) for item in items]
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="face-engine")
    return list(_pool.map(function, items))


def _forget_the_pool() -> None:
    global _pool
    _pool = None  # a forked child has none of its parent's threads: it makes its own


os.register_at_fork(after_in_child=_forget_the_pool)


class FaceEngine:
    """``live``: frames from a camera at a kiosk. Only dlib's HOG detector runs (the CNN fallback
    costs over a second), and faces much smaller than the nearest one are ignored as bystanders."""

    def __init__(self, embedder: Embedder, use_cnn_fallback: bool = True, live: bool = False):
        self.embedder = embedder
        self.live = live
        self.use_cnn_fallback = use_cnn_fallback and not live

    def analyse_photos(self, photos: Sequence[bytes]) -> list[PhotoAnalysis]:
        """Decode each photo, find its one face, check its quality, and embed the usable faces in
        one batch. Problems (unreadable, no face, several faces, poor quality) never raise."""
        found = _on_every_core(self._single_usable_face, photos)
        usable = [analysis for analysis in found if analysis.face is not None]
        if not usable:
            return found
        embeddings = iter(self.embedder.embed(numpy.stack([analysis.face.chip for analysis in usable])))
        return [
            PhotoAnalysis(analysis.faces, analysis.face, next(embeddings)) if analysis.face is not None else analysis
            for analysis in found
        ]

    def warm_up(self) -> None:
        """Load the detectors and the network, and run each once (a worker does this before its
        first live check)."""
        blank = numpy.zeros((480, 640, 3), dtype=numpy.uint8)
        faces.detect_faces(blank, use_cnn_fallback=False)
        self.embedder.embed(numpy.zeros((1, faces.CHIP_SIZE, faces.CHIP_SIZE, 3), dtype=numpy.uint8))

    def _single_usable_face(self, data: bytes) -> PhotoAnalysis:
        try:
            image = faces.decode_image(data)
        except faces.ImageError as error:
            return PhotoAnalysis([], problem=str(error))
        found = faces.detect_faces(image, use_cnn_fallback=self.use_cnn_fallback, quick=self.live)
        considered = self._at_the_camera(found, image.shape) if self.live else found
        if not considered:
            return PhotoAnalysis(found, problem=NO_LIVE_FACE_REASON if self.live else NO_FACE_REASON)
        if len(considered) > 1:
            reason = SEVERAL_LIVE_FACES_REASON if self.live else SEVERAL_FACES_REASON
            return PhotoAnalysis(found, problem=reason.format(count=len(considered)))
        problems = faces.assess(considered[0], live=self.live)
        if problems:
            return PhotoAnalysis(found, problem=" ".join(problems))
        return PhotoAnalysis(found, considered[0])

    @staticmethod
    def _at_the_camera(found: Sequence[faces.Face], shape: Sequence[int]) -> list[faces.Face]:
        height, width = shape[:2]
        inside = [face for face in found
                  if face.box[0] > 0 and face.box[1] > 0 and face.box[2] < width and face.box[3] < height]
        candidates = inside or list(found)  # someone very close to the camera fills the frame
        if not candidates:
            return []
        widest = max(face.box[2] - face.box[0] for face in candidates)
        return [face for face in candidates if face.box[2] - face.box[0] >= BYSTANDER_SHARE * widest]

    def embed_faces(self, found: Sequence[faces.Face]) -> list[EmbeddedFace]:
        embeddings = self.embedder.embed(numpy.stack([face.chip for face in found])) if found else []
        return [EmbeddedFace(face, embedding) for face, embedding in zip(found, embeddings)]

    def embed_files(
        self,
        paths: Iterable[Path],
        no_face: str = "fail",
        progress: Callable[[Iterable], Iterable] = iter,
    ) -> FileEmbeddings:
        """Embed the face nearest the centre of each photo (the labelled person in LFW-style sets).

        ``no_face="center"`` aligns a face guessed in the middle of the photo when detection
        finds none; ``"fail"`` leaves that file without an embedding.
        """
        return self.embed_file_chips(self.file_chips(paths, no_face, progress))

    def file_chips(
        self,
        paths: Iterable[Path],
        no_face: str = "fail",
        progress: Callable[[Iterable], Iterable] = iter,
    ) -> "FileChips":
        """Detect and align the central face of each photo once (the slow part), so that several
        networks can embed the same chips (FaceEngine.embed_file_chips)."""
        if no_face not in NO_FACE_POLICIES:
            raise ValueError(f"no_face must be one of {', '.join(NO_FACE_POLICIES)}, not {no_face!r}")
        found = FileChips(FileEmbeddings(embeddings={}, no_face=[], unreadable={}), [], [])
        for path in progress(list(paths)):
            chip = self._labelled_chip(Path(path), no_face, found.files)
            found.files.embeddings[Path(path)] = None
            if chip is not None:
                found.paths.append(Path(path))
                found.chips.append(chip)
        return found

    def embed_file_chips(self, found: "FileChips") -> FileEmbeddings:
        """``found``'s files, each with this engine's embedding of its chip (None where none)."""
        files = found.files
        result = FileEmbeddings(embeddings=dict(files.embeddings), no_face=list(files.no_face),
                                unreadable=dict(files.unreadable))
        size = self.embedder.batch_size
        for start in range(0, len(found.chips), size):
            self._flush(found.paths[start:start + size], found.chips[start:start + size], result)
        return result

    def _labelled_chip(self, path: Path, no_face: str, result: FileEmbeddings) -> numpy.ndarray | None:
        try:
            image = faces.load_image(path)
        except (faces.ImageError, OSError) as error:
            result.unreadable[path] = str(error)
            return None
        face = faces.central_face(faces.detect_faces(image, use_cnn_fallback=self.use_cnn_fallback), image.shape)
        if face is None:
            result.no_face.append(path)
            if no_face == "center":
                face = faces.centre_guess(image)
        return None if face is None else face.chip

    def _flush(self, paths: list[Path], chips: list[numpy.ndarray], result: FileEmbeddings) -> None:
        if chips:
            for path, embedding in zip(paths, self.embedder.embed(numpy.stack(chips))):
                result.embeddings[path] = embedding
