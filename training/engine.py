"""The face engine: photo -> faces -> aligned chips -> embeddings.

``training.faces`` finds and aligns faces (dlib, Pillow); ``training.embedder`` runs the
network (TensorFlow). This module joins them for one photo (enrollment, verification) and for
many files at once (evaluation, bulk import), batching the network calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy

from training import faces
from training.embedder import Embedder

logger = logging.getLogger(__name__)

NO_FACE_POLICIES = ("fail", "center")


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


class FaceEngine:
    def __init__(self, embedder: Embedder, use_cnn_fallback: bool = True):
        self.embedder = embedder
        self.use_cnn_fallback = use_cnn_fallback

    def embed_photo(self, data: bytes) -> list[EmbeddedFace]:
        """Every face in an uploaded photo with its embedding. Raises faces.ImageError."""
        image = faces.decode_image(data)
        return self.embed_faces(faces.detect_faces(image, use_cnn_fallback=self.use_cnn_fallback))

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
        if no_face not in NO_FACE_POLICIES:
            raise ValueError(f"no_face must be one of {', '.join(NO_FACE_POLICIES)}, not {no_face!r}")
        result = FileEmbeddings(embeddings={}, no_face=[], unreadable={})
        pending_paths: list[Path] = []
        pending_chips: list[numpy.ndarray] = []
        for path in progress(list(paths)):
            chip = self._labelled_chip(Path(path), no_face, result)
            result.embeddings[Path(path)] = None
            if chip is not None:
                pending_paths.append(Path(path))
                pending_chips.append(chip)
            if len(pending_chips) == self.embedder.batch_size:
                self._flush(pending_paths, pending_chips, result)
        self._flush(pending_paths, pending_chips, result)
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
        paths.clear()
        chips.clear()
