"""What an uploaded file must look like before it is kept or sent to a worker.

Web processes only sniff the first bytes (no decoding, no dlib): a text file renamed .jpg is
refused at once, with the words the worker would use. The worker still decodes and checks
everything (training.faces.decode_image).
"""

from __future__ import annotations

import re

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
