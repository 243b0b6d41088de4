"""What an uploaded file must look like before it is kept or sent to a worker.

Web processes never load dlib, and decode next to nothing: ``looks_like_an_image`` sniffs the first
bytes, so a text file renamed .jpg is refused at once with the words the worker would use (the
name of a file is never trusted); ``inspect_image`` then reads the header with Pillow, refuses more
pixels than FRID_MAX_IMAGE_PIXELS before a pixel is decoded (decompression bombs), and finds JPEG
and PNG files cut off in transit. The worker still decodes and checks everything
(training.faces.decode_image).
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib

# The same words as the worker's refusal (training.faces), with the file named: an upload may
# hold several files.
NOT_A_PHOTO = "{filename} is not a photo, or not in a format we can read. Upload a JPEG or PNG photo."

# The first bytes of each format the worker opens (training.faces.ACCEPTED_FORMATS).
_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG (and the MPO files some cameras write)
    b"\x89PNG\r\n\x1a\n",
    b"GIF8",
    b"BM",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
)
_WEBP = re.compile(rb"RIFF....WEBP", re.DOTALL)
_NETPBM = re.compile(rb"P[1-6]\s")  # PBM, PGM, PPM (Pillow's PPM plugin)


def looks_like_an_image(data: bytes) -> bool:
    """The first bytes of an image format the worker can read (the worker checks the rest)."""
    return data.startswith(_SIGNATURES) or bool(_WEBP.match(data[:12]) or _NETPBM.match(data[:3]))


# --- Past the first bytes: the header, and for JPEG and PNG the whole file ----------------------

# The formats the worker opens (training.faces.ACCEPTED_FORMATS; that module loads dlib, so not imported).
_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
# JPEG is decoded at 1/8 of its size (libjpeg scales while decoding): a few milliseconds even for a
# phone photo, yet every byte of it is read, so a file cut off in transit is found here.
_DRAFT_SIDE = 64


class ImageProblem(ValueError):
    """Why some bytes are not an image the worker can take; ``kind`` is one of the three below, and
    callers word the refusal (a photo is named by its file, a frame by its number)."""

    NOT_AN_IMAGE = "not_an_image"
    DAMAGED = "damaged"
    TOO_MANY_PIXELS = "too_many_pixels"

    def __init__(self, kind: str, size: tuple[int, int] | None = None):
        super().__init__(kind)
        self.kind = kind
        self.size = size


def inspect_image(data: bytes, max_pixels: int) -> tuple[int, int]:
    """The image's width and height, once its first bytes, its header and its pixel count are
    checked, and for JPEG and PNG that the file is whole. Raises ImageProblem.

    The pixel count is read from the header before any pixel is decoded, so a decompression bomb
    (a few kilobytes that would decode to gigabytes) costs nothing; Pillow's own guard, which
    raises past twice its default limit, is caught and given the same words."""
    if not looks_like_an_image(data):
        raise ImageProblem(ImageProblem.NOT_AN_IMAGE)
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below decides
            image = Image.open(io.BytesIO(data), formats=_FORMATS)
    except Image.DecompressionBombError as error:
        raise ImageProblem(ImageProblem.TOO_MANY_PIXELS) from error
    except UnidentifiedImageError as error:
        raise ImageProblem(ImageProblem.NOT_AN_IMAGE) from error
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
        raise ImageProblem(ImageProblem.DAMAGED) from error
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageProblem(ImageProblem.TOO_MANY_PIXELS, (width, height))
        try:
            if image.format == "JPEG":
                image.draft("RGB", (_DRAFT_SIDE, _DRAFT_SIDE))
                image.load()
            elif image.format == "PNG":
                image.verify()  # every chunk's checksum, to the end, without inflating the pixels
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error) as error:
            raise ImageProblem(ImageProblem.DAMAGED, (width, height)) from error
    return width, height
