"""One loader for every image: bytes -> RGB uint8 [size, size, 3], the whole frame or each region.

Training and the Lambda function both call :func:`load_image` (:func:`load_regions` for a
camera with regions: one decode, one crop per box), so the model sees exactly the
pixels at training time that it sees in production (no training/serving skew).

What it does, in order (each step can reject the frame with a typed ``BadInputError``):

1. empty bytes                         -> ``EmptyImageError``
2. more than ``max_bytes``             -> ``TooManyBytesError``
3. magic bytes neither JPEG nor PNG    -> ``NotAnImageError`` (the bytes decide, never the name)
4. header: width x height above ``max_pixels`` -> ``TooManyPixelsError``, before any pixel is
   decoded. The header is read by a small structural walk (JPEG segments / PNG chunks), so a
   bomb never reaches Pillow; Pillow's own ``DecompressionBombError``/``Warning`` map to the
   same error when they fire anyway.
5. the structural walk also checks the file is whole (JPEG: an EOI marker after the first
   scan; PNG: every chunk complete with a matching CRC, up to IEND). This does not depend on
   Pillow's process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES`` switch, which some other library
   may have turned on and which would otherwise pad a half JPEG with grey or skip PNG CRCs.
   Decoder errors also map to ``TruncatedImageError``.
6. JPEG draft: libjpeg decodes directly at 1/2, 1/4 or 1/8 scale, the smallest scale whose
   result still gives every box >= ``size`` pixels on its short side (the whole frame: a
   1280x720 frame decodes as 640x360; a region a tenth of it may need full resolution).
7. decode memory, from the header (functions/frames/decode_cost.py): above ``max_decode_bytes``
   -> ``TooMuchDecodeMemoryError``, before any pixel is decoded; otherwise the decode holds
   its cost in the caller's ``budget`` (functions/frames/decode_budget.py) while it runs.
8. any mode -> 8 bits, in strips: greyscale to one band (RGB only at the final size), the rest
   to RGB. Transparent pixels are composited on WHITE (not dropped): dropping alpha
   exposes whatever colour happens to be stored under fully transparent pixels (often black
   or noise), while white is what a viewer shows. 16-bit greyscale is scaled (x 255/65535),
   not clipped, in integers.
9. EXIF orientation applied (all 8 orientations).
10. bilinear resize of the WHOLE frame (or of each region's box) to ``size`` x ``size``: the
   aspect ratio is not kept, because a vehicle can be anywhere in the frame, including its edges.

Pure: Pillow and numpy only, no global state is changed (the budget is the caller's object).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Sequence
from contextlib import nullcontext

import numpy as np
from PIL import ExifTags, Image

from functions.env import DEFAULT_MAX_BYTES, DEFAULT_MAX_DECODE_MIB, DEFAULT_MAX_PIXELS, MAX_DECODE_MIB
from functions.errors import (
    EmptyImageError,
    NotAnImageError,
    TooManyBytesError,
    TooManyPixelsError,
    TooMuchDecodeMemoryError,
    TruncatedImageError,
)
from functions.frames.decode_budget import MIB, DecodeBudget
from functions.frames.decode_cost import (
    FrameHeader,
    decode_cost,
    grey_path,
    jpeg_coefficient_bytes,
    needs_conversion,
    png_facts,
    strip_rows,
)
from functions.frames.image_format import jpeg_structure, png_structure, sniff_format
from functions.frames.regions import WHOLE_FRAME, Box, draft_reduction

#: Must match ``functions.frames.manifest.InputSpec.resize``.
RESIZE_METHOD = "bilinear"
IMAGE_SIZE = 224

# Exceptions Pillow raises on malformed data while opening or decoding. Anything else (a bug
# in this module, MemoryError, ...) is not bad input and must surface.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)

_FIX_HINT = "re-save or re-upload the frame as a complete JPEG or PNG"


def load_image(
    data: bytes,
    *,
    source: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decode_bytes: int = DEFAULT_MAX_DECODE_MIB * MIB,
    budget: DecodeBudget | None = None,
    size: int = IMAGE_SIZE,
    draft: bool = True,
) -> np.ndarray:
    """Decode a JPEG or PNG into a C-contiguous uint8 array [size, size, 3], RGB: the whole frame.

    ``source`` (a path or ``s3://`` URI) only appears in error messages. ``draft=False``
    decodes JPEGs at full resolution (slower; the benchmark compares the two). A frame whose
    decode would hold more than ``max_decode_bytes`` (functions/frames/decode_cost.py) is refused
    before any pixel is decoded; ``budget``, when given, is held for the decode's cost.
    """
    return load_regions(
        data,
        (WHOLE_FRAME,),
        source=source,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        max_decode_bytes=max_decode_bytes,
        budget=budget,
        size=size,
        draft=draft,
    )[0]


def load_regions(
    data: bytes,
    boxes: Sequence[Box],
    *,
    source: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decode_bytes: int = DEFAULT_MAX_DECODE_MIB * MIB,
    budget: DecodeBudget | None = None,
    size: int = IMAGE_SIZE,
    draft: bool = True,
) -> list[np.ndarray]:
    """Decode a frame ONCE and crop every box of it to a uint8 array [size, size, 3], RGB.

    THE crop of camsort: training and the function both call it with a camera's whole box
    list, so a region's model sees the same pixels in both (the decode scale depends on the
    smallest box: the JPEG draft keeps every box at least ``size`` source pixels on its short
    side, so training must pass the same list). ``load_image`` is the whole-frame case.
    """
    if not boxes:
        raise ValueError("load_regions needs at least one box")
    if not data:
        raise EmptyImageError(f"{source}: the file is empty (0 bytes); {_FIX_HINT}")
    if len(data) > max_bytes:
        raise TooManyBytesError(
            f"{source}: {len(data)} bytes is more than the limit of {max_bytes} bytes; "
            "upload a smaller frame or raise the byte limit (CAMSORT_MAX_BYTES)"
        )
    kind = sniff_format(data)
    if kind is None:
        raise NotAnImageError(
            f"{source}: not a JPEG or PNG (the file starts with {bytes(data[:8])!r}); "
            "convert the frame to JPEG or PNG"
        )

    width, height, problem = jpeg_structure(data) if kind == "jpeg" else png_structure(data)
    if width is None or height is None:
        raise TruncatedImageError(
            f"{source}: the {kind.upper()} header is cut short or corrupt ({problem}); {_FIX_HINT}"
        )
    _check_pixels(width, height, max_pixels, source)
    if problem:
        raise TruncatedImageError(
            f"{source}: the {kind.upper()} is truncated or corrupt ({len(data)} bytes, {problem}); {_FIX_HINT}"
        )

    image, header, transpose = _open(
        data, kind, boxes=boxes, size=size, draft=draft, max_pixels=max_pixels, source=source
    )
    cost = decode_cost(header, size)
    if cost > max_decode_bytes:
        raise TooMuchDecodeMemoryError(
            f"{source}: decoding this {header.width}x{header.height} {kind.upper()} (Pillow mode "
            f"{header.mode}) would hold {cost / MIB:.0f} MiB, more than the limit of "
            f"{max_decode_bytes / MIB:.0f} MiB per frame; re-save it as 8-bit RGB or downscale it, "
            f"or raise {MAX_DECODE_MIB}"
        )
    with budget.hold(cost) if budget is not None else nullcontext():
        _load(image, kind, source)
        if kind == "png":
            transpose = _orientation(image)
        return _crops(image, header, transpose, boxes, size=size, source=source)


def frame_header(
    data: bytes,
    *,
    source: str,
    size: int = IMAGE_SIZE,
    draft: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> FrameHeader:
    """What decoding the whole of ``data`` would hold, read from its headers only (no pixel decoded).

    ``decode_cost(frame_header(data, ...), size)`` is the figure ``load_image`` checks against its
    limit; bench/decode_memory.py compares it with the memory a real decode takes.
    """
    kind = sniff_format(data)
    if kind is None:
        raise NotAnImageError(f"{source}: not a JPEG or PNG; convert the frame to JPEG or PNG")
    _image, header, _transpose = _open(
        data, kind, boxes=(WHOLE_FRAME,), size=size, draft=draft, max_pixels=max_pixels, source=source
    )
    return header


def _check_pixels(width: int, height: int, max_pixels: int, source: str) -> None:
    pixels = width * height
    if pixels > max_pixels:
        raise TooManyPixelsError(
            f"{source}: {width}x{height} = {pixels} pixels is more than the limit of "
            f"{max_pixels} pixels; downscale the frame or raise the pixel limit (CAMSORT_MAX_PIXELS)"
        )
    # Pillow's own bomb guard (read, never changed): above it Pillow would warn or refuse.
    # Checking it here keeps the decision ours and avoids touching the global warning filters
    # (warnings.catch_warnings is not thread-safe and the dataset loader decodes in threads).
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if pillow_limit is not None and pixels > pillow_limit:
        raise TooManyPixelsError(
            f"{source}: {width}x{height} = {pixels} pixels is more than Pillow's decompression-bomb "
            f"limit of {pillow_limit} pixels; downscale the frame"
        )


def _open(
    data: bytes, kind: str, *, boxes: Sequence[Box], size: int, draft: bool, max_pixels: int, source: str
) -> tuple[Image.Image, FrameHeader, Image.Transpose | None]:
    """Pillow's lazy open (headers only) + JPEG draft, what its decode will hold, its orientation."""
    try:
        image = Image.open(io.BytesIO(data), formats=("JPEG", "PNG"))
        # The structural walk already checked the size; Pillow's reading of the header must agree.
        full_width, full_height = image.size
        _check_pixels(full_width, full_height, max_pixels, source)
        # A JPEG's EXIF is in its header; a PNG's getexif() would decode the pixels before the
        # cost check (and outside the budget): its orientation is read after the decode.
        transpose = _orientation(image) if kind == "jpeg" else None
        if draft and kind == "jpeg":
            upright = (full_height, full_width) if transpose in _SWAPS_AXES else (full_width, full_height)
            reduction = draft_reduction(boxes, *upright, size)
            # Pillow picks the largest reduction whose result still covers the requested size.
            image.draft("RGB", (full_width // reduction, full_height // reduction))
        if kind == "png":
            row_bytes, may_rotate = png_facts(data)
            coefficients = 0
        else:
            row_bytes, may_rotate = 0, "exif" in image.info
            coefficients = jpeg_coefficient_bytes(
                data,
                width=full_width,
                height=full_height,
                components=len(image.getbands()),
                progressive=bool(image.info.get("progressive") or image.info.get("progression")),
            )
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Only reachable if Pillow's limit changed in between or warnings are turned into errors.
        raise TooManyPixelsError(
            f"{source}: too many pixels for a safe decode ({exc}); downscale the frame"
        ) from exc
    except _DECODE_ERRORS as exc:
        raise TruncatedImageError(
            f"{source}: the {kind.upper()} cannot be decoded ({exc}); {_FIX_HINT}"
        ) from exc
    header = FrameHeader(
        mode=image.mode,
        width=image.size[0],
        height=image.size[1],
        colour_key=image.info.get("transparency") is not None,
        may_rotate=may_rotate,
        png_row_bytes=row_bytes,
        jpeg_coefficient_bytes=coefficients,
    )
    return image, header, transpose


def _load(image: Image.Image, kind: str, source: str) -> None:
    try:
        image.load()
    except _DECODE_ERRORS as exc:
        raise TruncatedImageError(
            f"{source}: the {kind.upper()} cannot be decoded ({exc}); {_FIX_HINT}"
        ) from exc


def _crops(
    image: Image.Image,
    header: FrameHeader,
    transpose: Image.Transpose | None,
    boxes: Sequence[Box],
    *,
    size: int,
    source: str,
) -> list[np.ndarray]:
    """Decoded image -> 8 bits (strips) -> EXIF orientation -> each box resized -> RGB uint8 arrays.

    Greyscale stays one band through the resize and becomes RGB at ``size`` x ``size``: the
    bilinear resize treats bands alike, so this is the same array as converting first, at a
    quarter of the memory. Orientation is applied after the 8-bit conversion (a per-pixel step
    commutes with a transpose) and before the resize (which does not). A box is cropped and
    resized in one step (Pillow's ``resize(box=...)``, sub-pixel exact), so a small box is not
    first rounded to whole pixels.
    """
    eight_bit = _grey_8bit(image) if grey_path(header) else _rgb_strips(image, header, source)
    del image  # the caller's reference is its last: only the 8-bit image is held from here
    if transpose is not None:
        eight_bit = eight_bit.transpose(transpose)
    crops = []
    for box in boxes:
        if box == WHOLE_FRAME:
            crop = (
                eight_bit
                if eight_bit.size == (size, size)
                else eight_bit.resize((size, size), Image.Resampling.BILINEAR)
            )
        else:
            crop = eight_bit.resize((size, size), Image.Resampling.BILINEAR, box=box.pixels(*eight_bit.size))
        crops.append(np.ascontiguousarray(np.asarray(crop.convert("RGB"), dtype=np.uint8)))
    return crops


# EXIF orientation -> the transpose that shows the frame upright (ImageOps.exif_transpose's table).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# The orientations that turn the stored frame by 90 degrees: the upright frame's width is the stored height.
_SWAPS_AXES = (
    Image.Transpose.TRANSPOSE,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
)


def _orientation(image: Image.Image) -> Image.Transpose | None:
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
    except _DECODE_ERRORS:
        # Malformed EXIF: the pixels are fine, the orientation is unknown. Use them as stored,
        # which is what image viewers do, rather than losing the frame.
        return None
    return _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None


def _strips(image: Image.Image) -> Iterator[tuple[int, Image.Image]]:
    width, height = image.size
    rows = strip_rows(width)
    for top in range(0, height, rows):
        yield top, image.crop((0, top, width, min(height, top + rows)))


def _rgb_strips(image: Image.Image, header: FrameHeader, source: str) -> Image.Image:
    """Any colour mode -> RGB, a strip at a time (every step of to_rgb is per pixel)."""
    if not needs_conversion(header):
        return image
    rgb = Image.new("RGB", image.size)
    for top, strip in _strips(image):
        rgb.paste(to_rgb(strip, source=source), (0, top))
    return rgb


def _grey_8bit(image: Image.Image) -> Image.Image:
    """Greyscale of any depth -> one 8-bit band, a tRNS grey key on white (255), strip by strip."""
    key = image.info.get("transparency")
    key = key if isinstance(key, int) and image.mode != "1" else None
    if image.mode == "L" and key is None:
        return image
    grey = np.empty((image.size[1], image.size[0]), dtype=np.uint8)
    for top, strip in _strips(image):
        rows = grey[top : top + strip.size[1]]
        if strip.mode == "1":
            rows[:] = np.asarray(strip.convert("L"))
            continue
        values = np.asarray(strip)
        rows[:] = values if strip.mode == "L" else _to_uint8_grey(values, strip.mode)
        if key is not None:
            rows[values == key] = 255
    return Image.fromarray(grey)


def to_rgb(image: Image.Image, *, source: str = "<image>") -> Image.Image:
    """Any Pillow mode -> RGB (alpha and tRNS colour keys on white, 16-bit scaled). Public for the mode tests."""
    mode = image.mode
    # PNG transparency can also be a tRNS colour key instead of an alpha channel: one grey
    # level (L, 16-bit grey) or one RGB colour is fully transparent. Those pixels get the
    # same white as transparent alpha pixels, never the key colour itself.
    key = image.info.get("transparency")
    if mode == "RGB" and key is None:
        return image
    if mode in ("I", "F") or mode.startswith("I;16"):
        values = np.asarray(image)
        grey = _to_uint8_grey(values, mode)
        if isinstance(key, int):  # Pillow cannot convert a 16-bit colour key to alpha
            grey[values == key] = 255
        return Image.fromarray(grey).convert("RGB")
    try:
        if mode in ("L", "RGB") and key is not None:
            image = image.convert("RGBA")  # the key becomes alpha 0
        if mode == "La":  # premultiplied: Pillow only un-premultiplies it to LA
            image = image.convert("LA")
        if _has_alpha(image) and image.mode != "RGBA":
            image = image.convert("RGBA")
        if image.mode == "RGBA":
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, image).convert("RGB")
        return image.convert("RGB")
    except _DECODE_ERRORS as exc:
        raise TruncatedImageError(
            f"{source}: cannot convert an image in mode {mode} to RGB ({exc}); re-save it as 8-bit RGB"
        ) from exc


def _has_alpha(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        return True
    # Palette images carry transparency either as a tRNS entry or as an RGBA palette.
    return image.mode == "P" and (
        "transparency" in image.info or (image.palette is not None and image.palette.mode == "RGBA")
    )


def _to_uint8_grey(values: np.ndarray, mode: str) -> np.ndarray:
    """Greyscale with more than 8 bits -> uint8, scaled rather than clipped.

    ``I;16*`` and ``I`` (how 16-bit PNGs arrive) span 0..65535 and are scaled in integers:
    round(v x 255 / 65535) = round(v / 257) = (v + 128) // 257 exactly (v / 257 is never
    a half), with no float64 copy. ``F`` follows Pillow's own convention for float greyscale
    (0..255, e.g. ``Image.convert("F")`` of an 8-bit image) and is rounded in float32.
    """
    if mode == "F":
        floats = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0)
        return np.rint(np.clip(floats, 0.0, 255.0)).astype(np.uint8)
    wide = np.clip(values, 0, 65535).astype(np.uint32)
    wide += 128
    wide //= 257
    return wide.astype(np.uint8)
