"""What the bytes of a frame are, before Pillow sees them: the format from its magic number, and
the image size and wholeness from a structural walk (JPEG segments, PNG chunks with their CRCs).

Pure and cheap: no pixel is decoded, so a decompression bomb or a truncated upload is caught
here from its header (functions/frames/image_loader.py calls these first).
"""

from __future__ import annotations

import struct
import zlib
from typing import Literal

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# JPEG start-of-frame markers carry the image size (C4 = DHT, C8 = JPG, CC = DAC are not SOFs).
_JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Markers without a length field.
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_SOS = 0xDA
_JPEG_EOI = b"\xff\xd9"


def sniff_format(data: bytes) -> Literal["jpeg", "png"] | None:
    """Which of the two accepted formats the bytes are, from their magic number only."""
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    if data.startswith(PNG_MAGIC):
        return "png"
    return None


def jpeg_structure(data: bytes) -> tuple[int | None, int | None, str | None]:
    """(width, height, problem) from the JPEG segment chain; ``problem`` is None for a whole file.

    Whole means an EOI marker follows the first scan: inside entropy-coded data 0xFF is
    always stuffed (0xFF00) or a restart marker, so FF D9 there can only be the real end.
    Sizes are None when no frame header (SOF) was found before the first scan.
    """
    width = height = None
    pos, end = 2, len(data)
    while pos + 1 < end:
        if data[pos] != 0xFF:
            pos += 1  # junk between segments: skip it, as libjpeg and Pillow do
            continue
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1  # fill byte
            continue
        if marker in _JPEG_STANDALONE_MARKERS:
            pos += 2
            continue
        if marker == 0xD9:
            return width, height, "an end-of-image marker before any image data"
        if pos + 4 > end:
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment_end = pos + 2 + length
        if length < 2 or segment_end > end:
            break
        if marker in _JPEG_SOF_MARKERS and length >= 7:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
        if marker == _JPEG_SOS:
            if width is None:
                return None, None, "no frame header"
            if data.find(_JPEG_EOI, segment_end) == -1:
                return width, height, "no end-of-image marker after the image data"
            return width, height, None
        pos = segment_end
    return width, height, "the header ends early"


def png_structure(data: bytes) -> tuple[int | None, int | None, str | None]:
    """(width, height, problem) from the PNG chunk list; ``problem`` is None for a whole file.

    Whole means every chunk is complete with a matching CRC, image data is present and IEND
    is reached. The CRCs catch data damaged in transit even when Pillow is told to tolerate
    broken files (it skips CRC checks under LOAD_TRUNCATED_IMAGES); crc32 costs ~1 ms per MB.
    """
    pos, end = len(PNG_MAGIC), len(data)
    if end < pos + 8 + 13 + 4 or data[pos + 4 : pos + 8] != b"IHDR":
        return None, None, "no IHDR header"
    width, height = struct.unpack(">II", data[pos + 8 : pos + 16])
    view = memoryview(data)
    seen_image_data = False
    while pos + 8 <= end:
        length, chunk_type = struct.unpack(">I4s", data[pos : pos + 8])
        chunk_end = pos + 8 + length + 4  # length, type, data, crc
        if chunk_end > end:
            return width, height, f"the {chunk_type.decode('latin-1')} chunk is cut short"
        (stored_crc,) = struct.unpack(">I", data[chunk_end - 4 : chunk_end])
        if zlib.crc32(view[pos + 4 : chunk_end - 4]) != stored_crc:
            return width, height, f"the {chunk_type.decode('latin-1')} chunk fails its CRC check"
        if chunk_type == b"IDAT":
            seen_image_data = True
        if chunk_type == b"IEND":
            return width, height, None if seen_image_data else "no image data"
        pos = chunk_end
    return width, height, "no IEND chunk"
