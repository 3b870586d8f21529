"""What decoding a frame will cost in memory, from its header alone (pure: no pixels decoded).

The pixel limit counts pixels, not what they cost: a 78 kB 16-bit greyscale PNG of 40 MP and a
140 kB RGBA one decode into hundreds of MB. :func:`decode_cost` is the peak number of bytes
:func:`functions.frames.image_loader.load_image` holds at once for a frame, phase by phase, as it
decodes it (the model of its own code, checked against measured peak RSS by the bench's
decode-memory stage):

1. **load**: Pillow's image in its storage mode (``PIXEL_BYTES``: 1 byte for 1/L/P, 2 for
   16-bit grey, 4 for every multi-band mode: Pillow keeps RGB, LA and CMYK at 4 bytes a pixel,
   and reduces 16-bit RGB(A) to 8 bits while reading), plus the decoder's own buffers: the PNG
   decoder's two scanlines at the file's bit depth and bands (palette indices, alpha, 16-bit
   samples), libjpeg's full-size coefficient buffer when the JPEG has several scans (progressive),
   2 bytes per sample per component at the file's full size, whatever the draft scale;
2. **to 8 bits**: greyscale (1, L, 16-bit, I, F) becomes one 8-bit band (free for plain L); any
   other mode becomes RGB (free for plain RGB): palette expansion, alpha and colour keys on white,
   CMYK. Converted in strips of ``STRIP_PIXELS``, so only the output and a strip's temporaries
   (``STRIP_BYTES_PER_PIXEL``) are added to the decoded image;
3. **orientation**: an EXIF-rotated frame is transposed once, after the conversion (a second
   copy of the 8-bit image). Counted whenever the header carries EXIF that may rotate;
4. **resize**: Pillow's two-pass bilinear resample holds one intermediate of ``size`` x the
   source height (either side when the frame may be rotated first).

The decoded file bytes themselves are not counted (they are the download, held by the caller).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from math import ceil

# Pillow's bytes per pixel for each storage mode a JPEG or PNG opens in (its ImagingNew).
PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}
MULTIBAND_PIXEL_BYTES = 4  # LA, La, PA, RGB, RGBA, RGBa, RGBX, CMYK, YCbCr, LAB, HSV
GREY_MODES = frozenset({"1", "L", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
# Conversion strips: at least one row, about this many pixels; the temporaries of a strip's
# conversion (crop, RGBA, white, composite, RGB; or the 16-bit integer arithmetic) stay below
# this many bytes a pixel.
STRIP_PIXELS = 1 << 18
STRIP_BYTES_PER_PIXEL = 24
# libjpeg's coefficient buffer: 64 16-bit coefficients per 8x8 block, per component.
_JPEG_BLOCK_BYTES = 64 * 2
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


@dataclass(frozen=True)
class FrameHeader:
    """What the header says, as Pillow will decode it (after any JPEG draft)."""

    mode: str  # Pillow's storage mode
    width: int  # decoded size
    height: int
    colour_key: bool = False  # a tRNS colour key / palette transparency in info
    may_rotate: bool = False  # EXIF is present and may carry an orientation
    png_row_bytes: int = 0  # one scanline of the PNG at its bit depth and bands (0: not a PNG)
    jpeg_coefficient_bytes: int = 0  # libjpeg's whole-image coefficient buffer (multi-scan JPEG)


def pixel_bytes(mode: str) -> int:
    return PIXEL_BYTES.get(mode, MULTIBAND_PIXEL_BYTES)


def grey_path(header: FrameHeader) -> bool:
    """Greyscale frames stay one band until after the resize (the RGB copy is made at 224x224)."""
    return header.mode in GREY_MODES


def needs_conversion(header: FrameHeader) -> bool:
    """Whether step 2 makes a new full-size image (plain L and plain RGB are used as they are)."""
    if grey_path(header):
        return header.mode != "L" or header.colour_key
    return header.mode != "RGB" or header.colour_key


def strip_rows(width: int) -> int:
    return max(1, STRIP_PIXELS // max(1, width))


def decode_cost(header: FrameHeader, size: int) -> int:
    """Peak bytes held at once while decoding ``header``'s frame to ``size`` x ``size`` RGB."""
    pixels = header.width * header.height
    decoded = pixels * pixel_bytes(header.mode)
    out_pixel = 1 if grey_path(header) else 3 + 1  # Pillow's RGB is 4 bytes a pixel
    load = (
        decoded
        + 2 * (header.png_row_bytes + 1 if header.png_row_bytes else 0)
        + header.jpeg_coefficient_bytes
    )
    converted = pixels * out_pixel if needs_conversion(header) else 0
    strip = min(pixels, strip_rows(header.width) * header.width) * STRIP_BYTES_PER_PIXEL
    conversion = decoded + converted + strip if converted else decoded
    held = pixels * out_pixel  # the 8-bit image from here on (the decoded one is dropped)
    orientation = 2 * held if header.may_rotate else held
    # The horizontal pass first: ``size`` x the (possibly transposed) source height.
    source_height = max(header.width, header.height) if header.may_rotate else header.height
    resize = held + size * source_height * out_pixel
    return max(load, conversion, orientation, resize)


def png_facts(data: bytes) -> tuple[int, bool]:
    """(scanline bytes, EXIF present) of a whole PNG (the structural walk has checked its chunks).

    EXIF comes from an ``eXIf`` chunk or ImageMagick's "Raw profile type exif" text, the two
    places Pillow reads an orientation from.
    """
    width, depth, colour = struct.unpack(">I4xBB", data[16:26])
    row_bytes = ceil(width * _PNG_CHANNELS.get(colour, 4) * depth / 8)
    pos, end, exif = 8, len(data), False
    while pos + 8 <= end:
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"eXIf" or (
            kind in (b"tEXt", b"zTXt", b"iTXt") and data[pos + 8 : pos + 30] == b"Raw profile type exif"
        ):
            exif = True
        if kind == b"IEND":
            break
        pos += 12 + length
    return row_bytes, exif


def jpeg_coefficient_bytes(
    data: bytes, *, width: int, height: int, components: int, progressive: bool
) -> int:
    """libjpeg's whole-image coefficient buffer when the JPEG has several scans, else 0.

    Inside entropy-coded data 0xFF is always stuffed, so every FF DA is a real start-of-scan;
    embedded thumbnails (each its own FF D8 FF) bring one scan each and are discounted.
    Counted at the full size (the draft scale does not shrink it) and at full chroma resolution
    (an upper bound for subsampled chroma).
    """
    multi_scan = progressive or data.count(b"\xff\xda") > data.count(b"\xff\xd8\xff")
    if not multi_scan:
        return 0
    return ceil(width / 8) * ceil(height / 8) * _JPEG_BLOCK_BYTES * components
