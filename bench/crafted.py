"""Hostile but valid frames: tiny files that decode into huge images (decompression bombs).

Every PNG colour type and bit depth, written chunk by chunk with one zlib stream of zero rows,
so a 40 MP frame is a few tens of kB on disk and is produced without ever holding its pixels.
Used by the decode-memory bench stage and by the tests that push bombs through the system.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from functions.frames.image_format import PNG_MAGIC

# (colour type, bit depth) pairs the PNG specification allows.
PNG_KINDS: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (0, 4), (0, 8), (0, 16),  # greyscale
    (2, 8), (2, 16),  # RGB
    (3, 1), (3, 2), (3, 4), (3, 8),  # palette
    (4, 8), (4, 16),  # greyscale + alpha
    (6, 8), (6, 16),  # RGBA
)  # fmt: skip
COLOUR_NAMES = {0: "grey", 2: "rgb", 3: "palette", 4: "grey+alpha", 6: "rgba"}
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


@dataclass(frozen=True)
class PngCase:
    """One crafted PNG: colour type, bit depth and whether it carries a tRNS transparency chunk."""

    colour_type: int
    bit_depth: int
    transparency: bool = False

    @property
    def name(self) -> str:
        key = "+tRNS" if self.transparency else ""
        return f"{COLOUR_NAMES[self.colour_type]}{key} {self.bit_depth}-bit"


def worst_cases() -> list[PngCase]:
    """Every colour type and bit depth; the types that may carry tRNS also with it (alpha by key)."""
    cases = [PngCase(colour, depth) for colour, depth in PNG_KINDS]
    cases += [PngCase(colour, depth, True) for colour, depth in PNG_KINDS if colour in (0, 2, 3)]
    return cases


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def crafted_png(case: PngCase, width: int, height: int, *, fill: int = 0) -> bytes:
    """A valid PNG of ``width`` x ``height`` whose every byte of pixel data is ``fill``."""
    colour, depth = case.colour_type, case.bit_depth
    row_bytes = (width * _CHANNELS[colour] * depth + 7) // 8
    chunks = [_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))]
    if colour == 3:
        entries = 1 << depth
        chunks.append(_chunk(b"PLTE", bytes(3 * entries)))  # all black
        if case.transparency:
            chunks.append(_chunk(b"tRNS", bytes(entries)))  # every entry fully transparent
    elif case.transparency and colour == 0:
        chunks.append(_chunk(b"tRNS", struct.pack(">H", 0)))
    elif case.transparency and colour == 2:
        chunks.append(_chunk(b"tRNS", struct.pack(">HHH", 0, 0, 0)))
    compressor = zlib.compressobj(9)
    row = b"\x00" + bytes([fill]) * row_bytes  # filter type 0, then the row
    parts = []
    # Rows in groups: compressing a few MB at a time keeps memory flat for any size.
    group = max(1, (4 << 20) // len(row))
    for start in range(0, height, group):
        parts.append(compressor.compress(row * min(group, height - start)))
    parts.append(compressor.flush())
    chunks.append(_chunk(b"IDAT", b"".join(parts)))
    chunks.append(_chunk(b"IEND", b""))
    return PNG_MAGIC + b"".join(chunks)
