"""What HR sees of an uploaded photo: an upright, scaled-down JPEG with the face boxes found drawn
on it, so that a photo refused for "several faces" shows which faces those were.

Pillow only (web processes never load dlib). The boxes are in the upright photo's pixels, as the
worker found them (training.faces applies the EXIF orientation first), so the preview applies
it too. A file that is no image, a damaged one or one over the worker's pixel limit gets no
preview: the page says so instead.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageOps

# The worker's limit (training.faces.MAX_IMAGE_PIXELS): nothing larger is ever decoded.
MAX_PIXELS = 40_000_000
BOX_COLOUR = (255, 200, 0)  # amber: seen on dark and light photos, and by most colour-blind eyes
BOX_OUTLINE = (0, 0, 0)


def photo_preview(data: bytes, boxes: Sequence[Sequence[int]] = (), longest_side: int = 640) -> bytes | None:
    """The photo as a JPEG at most ``longest_side`` pixels long, ``boxes`` ([left, top, right,
    bottom] each) drawn and numbered on it; None when the file cannot be shown."""
    try:
        upright = _upright(data, longest_side)
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, Image.DecompressionBombError):
        return None  # not an image, or a damaged one: the worker said why
    if upright is None:
        return None
    image, full_width = upright
    image.thumbnail((longest_side, longest_side), Image.Resampling.LANCZOS)
    _draw(image, boxes, image.width / full_width)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _upright(data: bytes, longest_side: int) -> tuple[Image.Image, int] | None:
    """The decoded photo turned as people see it, and the width the worker saw it at."""
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    if width * height > MAX_PIXELS:
        return None
    turned = image.getexif().get(0x0112) in (5, 6, 7, 8)  # a quarter turn: width and height swap
    # A JPEG can be decoded at 1/2, 1/4 or 1/8 of its size straight away: far less work for a preview.
    image.draft("RGB", (longest_side, longest_side))
    return ImageOps.exif_transpose(image).convert("RGB"), height if turned else width


def _draw(image: Image.Image, boxes: Sequence[Sequence[int]], scale: float) -> None:
    draw = ImageDraw.Draw(image)
    line = max(2, round(min(image.size) / 120))
    for number, (left, top, right, bottom) in enumerate(boxes, start=1):
        corners = [round(left * scale), round(top * scale), round(right * scale) - 1, round(bottom * scale) - 1]
        # A thin dark edge around the amber line keeps it visible on a pale background.
        draw.rectangle([corners[0] - 1, corners[1] - 1, corners[2] + 1, corners[3] + 1], outline=BOX_OUTLINE)
        draw.rectangle(corners, outline=BOX_COLOUR, width=line)
        if len(boxes) > 1:
            _label(draw, str(number), corners[:2], line)


def _label(draw: ImageDraw.ImageDraw, text: str, corner: list[int], line: int) -> None:
    left, top = corner
    size = max(14, line * 6)
    draw.rectangle([left, top, left + size, top + size], fill=BOX_COLOUR)
    draw.text((left + size / 2, top + size / 2), text, fill=(0, 0, 0), anchor="mm", font_size=size - 2)
