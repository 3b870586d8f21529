"""functions.frames.image_loader: bytes -> RGB uint8 [224, 224, 3], and every way bytes can be bad."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from functions.errors import (
    BadInputError,
    EmptyImageError,
    NotAnImageError,
    TooManyBytesError,
    TooManyPixelsError,
    TruncatedImageError,
)
from functions.frames import image_loader
from functions.frames.image_format import PNG_MAGIC, sniff_format
from functions.frames.image_loader import RESIZE_METHOD, load_image, to_rgb
from functions.frames.manifest import InputSpec
from functions.frames.regions import WHOLE_FRAME
from tests.fixtures.images import encode

SOURCE = "s3://frames/cam-7/frame-0001.jpg"


def uniform(mode: str, value, size=(40, 30)) -> Image.Image:
    return Image.new(mode, size, value)


def centre(pixels: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(v) for v in pixels[112, 112])


# --- output contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_output_is_contiguous_uint8_rgb_of_the_requested_size(fmt):
    data = encode(uniform("RGB", (10, 120, 200), (320, 180)), fmt)
    pixels = load_image(data, source=SOURCE)
    assert pixels.shape == (224, 224, 3)
    assert pixels.dtype == np.uint8
    assert pixels.flags.c_contiguous
    small = load_image(data, source=SOURCE, size=64)
    assert small.shape == (64, 64, 3)


def test_resize_method_matches_the_manifest_input_spec():
    assert RESIZE_METHOD == InputSpec().resize == "bilinear"


def test_whole_frame_is_resized_without_crop(street_pixels):
    # A frame with a 1-pixel-wide red column at each edge keeps both edges after the resize:
    # nothing is cropped, the aspect ratio is not kept.
    frame = np.full((180, 640, 3), 200, np.uint8)
    frame[:, :8] = (255, 0, 0)
    frame[:, -8:] = (0, 0, 255)
    pixels = load_image(encode(Image.fromarray(frame)), source=SOURCE)
    assert tuple(pixels[112, 0]) == (255, 0, 0)
    assert tuple(pixels[112, 223]) == (0, 0, 255)
    assert tuple(pixels[0, 112]) == (200, 200, 200)


def test_sniff_format_judges_magic_bytes():
    assert sniff_format(encode(uniform("RGB", 0), "JPEG")) == "jpeg"
    assert sniff_format(encode(uniform("RGB", 0), "PNG")) == "png"
    assert sniff_format(encode(uniform("RGB", 0), "GIF")) is None
    assert sniff_format(b"") is None


# --- modes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "fmt", "expected"),
    [
        (uniform("1", 1), "PNG", (255, 255, 255)),
        (uniform("1", 0), "PNG", (0, 0, 0)),
        (uniform("L", 100), "PNG", (100, 100, 100)),
        (uniform("L", 100), "JPEG", (100, 100, 100)),
        (uniform("RGB", (200, 40, 10)), "PNG", (200, 40, 10)),
        # alpha is composited on white: fully transparent -> white, half -> half way to white
        (uniform("RGBA", (200, 40, 10, 255)), "PNG", (200, 40, 10)),
        (uniform("RGBA", (0, 0, 0, 0)), "PNG", (255, 255, 255)),
        (uniform("RGBA", (0, 0, 0, 128)), "PNG", (127, 127, 127)),
        (uniform("LA", (50, 255)), "PNG", (50, 50, 50)),
        (uniform("LA", (0, 0)), "PNG", (255, 255, 255)),
        # 16-bit greyscale is scaled by 255/65535, not clipped at 255
        (uniform("I;16", 65535), "PNG", (255, 255, 255)),
        (uniform("I;16", 25700), "PNG", (100, 100, 100)),
        (uniform("I;16", 200), "PNG", (1, 1, 1)),
    ],
    ids=lambda v: v.mode if isinstance(v, Image.Image) else str(v),
)
def test_every_file_mode_becomes_rgb(image, fmt, expected):
    data = encode(image, fmt)
    pixels = load_image(data, source=SOURCE)
    tolerance = 2 if fmt == "JPEG" else 0
    assert np.abs(np.array(centre(pixels)) - expected).max() <= tolerance


def test_sixteen_bit_png_is_really_sixteen_bit():
    # guards the test above: Pillow must keep the PNG at 16 bits for it to mean anything
    assert Image.open(io.BytesIO(encode(uniform("I;16", 25700)))).mode == "I;16"


def test_palette_with_and_without_transparency():
    palette_image = Image.new("P", (40, 30), 0)
    palette_image.putpalette([10, 200, 30] + [0, 0, 0] * 255)
    assert centre(load_image(encode(palette_image), source=SOURCE)) == (10, 200, 30)
    palette_image.info["transparency"] = 0
    assert centre(load_image(encode(palette_image, transparency=0), source=SOURCE)) == (255, 255, 255)


def _half_keyed(mode: str, key, other) -> Image.Image:
    """Left half ``other``, right half the tRNS colour ``key``."""
    image = Image.new(mode, (40, 30), key)
    image.paste(other, (0, 0, 20, 30))
    return image


@pytest.mark.parametrize(
    ("mode", "key", "other", "other_rgb"),
    [
        ("RGB", (0, 255, 0), (200, 10, 10), (200, 10, 10)),  # a green-screen key
        ("L", 77, 200, (200, 200, 200)),
        ("I;16", 1000, 25700, (100, 100, 100)),
    ],
)
def test_trns_colour_key_is_composited_on_white_like_alpha(mode, key, other, other_rgb):
    data = encode(_half_keyed(mode, key, other), transparency=key)
    assert Image.open(io.BytesIO(data)).info["transparency"] == key  # the PNG really has a tRNS key
    pixels = load_image(data, source=SOURCE, size=40)
    # Well inside each half (bilinear resize only mixes at the border).
    assert tuple(pixels[15, 5].tolist()) == other_rgb
    assert tuple(pixels[15, 35].tolist()) == (255, 255, 255)


def test_trns_colour_key_in_a_palette_image():
    image = _half_keyed("RGB", (0, 255, 0), (200, 10, 10)).convert(
        "P", palette=Image.Palette.ADAPTIVE, colors=4
    )
    key_index = image.getpixel((35, 15))
    pixels = load_image(encode(image, transparency=key_index), source=SOURCE, size=40)
    assert tuple(pixels[15, 35].tolist()) == (255, 255, 255)
    assert tuple(pixels[15, 5].tolist()) == (200, 10, 10)


def test_rgb_without_a_key_keeps_that_colour():
    pixels = load_image(encode(_half_keyed("RGB", (0, 255, 0), (200, 10, 10))), source=SOURCE, size=40)
    assert tuple(pixels[15, 35].tolist()) == (0, 255, 0)


@pytest.mark.parametrize("mode", ["CMYK", "YCbCr"])
def test_jpeg_colour_spaces(mode):
    rgb = uniform("RGB", (30, 140, 220), (64, 48))
    pixels = load_image(encode(rgb.convert(mode), "JPEG", quality=95), source=SOURCE)
    assert np.abs(np.array(centre(pixels)) - (30, 140, 220)).max() <= 4


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (uniform("I", 65535), (255, 255, 255)),
        (uniform("I", 25700), (100, 100, 100)),
        (uniform("I", -5), (0, 0, 0)),
        (uniform("I;16B", 25700), (100, 100, 100)),
        (uniform("F", 100.0), (100, 100, 100)),
        (uniform("F", 300.0), (255, 255, 255)),
        (uniform("F", -3.0), (0, 0, 0)),
        (uniform("RGBA", (0, 0, 0, 0)).convert("RGBa"), (255, 255, 255)),
        (uniform("LA", (0, 0)).convert("La"), (255, 255, 255)),
        (uniform("RGBA", (10, 20, 30, 255)).convert("PA"), (10, 20, 30)),
    ],
    ids=lambda v: v.mode if isinstance(v, Image.Image) else str(v),
)
def test_in_memory_modes_become_rgb(image, expected):
    # modes no JPEG/PNG file arrives in, but to_rgb must still handle them
    rgb = to_rgb(image)
    assert rgb.mode == "RGB"
    assert tuple(rgb.getpixel((5, 5))) == expected


# --- EXIF orientation ------------------------------------------------------------------------

# The displayed image: four coloured quadrants (red top-left, green top-right, blue bottom-left,
# white bottom-right), wider than tall so that a rotation is visible in the shape too.
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def displayed() -> np.ndarray:
    image = np.zeros((64, 96, 3), np.uint8)
    image[:32, :48], image[:32, 48:], image[32:, :48], image[32:, 48:] = RED, GREEN, BLUE, WHITE
    return image


# How a camera stores the displayed image D for each orientation tag (EXIF 2.3, "Orientation":
# where the stored row 0 / column 0 are in the displayed image), written from the spec, not
# from Pillow's table.
STORED = {
    1: lambda d: d,
    2: lambda d: d[:, ::-1],  # row 0 top, column 0 right
    3: lambda d: d[::-1, ::-1],  # row 0 bottom, column 0 right
    4: lambda d: d[::-1],  # row 0 bottom, column 0 left
    5: lambda d: d.transpose(1, 0, 2),  # row 0 left, column 0 top
    6: lambda d: np.rot90(d, 1),  # row 0 right, column 0 top
    7: lambda d: d.transpose(1, 0, 2)[::-1, ::-1],  # row 0 right, column 0 bottom
    8: lambda d: np.rot90(d, -1),  # row 0 left, column 0 bottom
}


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_is_applied(orientation, fmt):
    stored = Image.fromarray(np.ascontiguousarray(STORED[orientation](displayed())))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    pixels = load_image(data, source=SOURCE)
    quadrants = [pixels[56, 56], pixels[56, 168], pixels[168, 56], pixels[168, 168]]
    for got, want in zip(quadrants, (RED, GREEN, BLUE, WHITE), strict=True):
        assert np.abs(got.astype(int) - want).max() <= 12, (orientation, quadrants)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_malformed_exif_keeps_the_pixels():
    data = bytearray(
        encode(uniform("RGB", (9, 99, 199), (64, 48)), "JPEG", quality=95, exif=b"Exif\x00\x00MM\x00*garbage")
    )
    pixels = load_image(bytes(data), source=SOURCE)
    assert np.abs(np.array(centre(pixels)) - (9, 99, 199)).max() <= 4


# --- bad input -------------------------------------------------------------------------------


def test_empty():
    with pytest.raises(EmptyImageError, match="frame-0001.jpg"):
        load_image(b"", source=SOURCE)


@pytest.mark.parametrize(
    "data",
    [
        encode(uniform("RGB", (1, 2, 3)), "GIF"),
        encode(uniform("RGB", (1, 2, 3)), "BMP"),
        encode(uniform("RGB", (1, 2, 3)), "WEBP"),
        b"camera offline\n",
        b"\xff\xd8",  # too short to be a JPEG
    ],
    ids=["gif", "bmp", "webp", "text", "two-bytes"],
)
def test_not_an_image(data):
    with pytest.raises(NotAnImageError) as error:
        load_image(data, source=SOURCE)
    assert SOURCE in str(error.value)
    assert "JPEG or PNG" in str(error.value)


def test_too_many_bytes_is_checked_first():
    data = encode(uniform("RGB", (1, 2, 3)), "JPEG")
    assert load_image(data, source=SOURCE, max_bytes=len(data)).shape == (224, 224, 3)
    with pytest.raises(TooManyBytesError, match="frame-0001.jpg"):
        load_image(data, source=SOURCE, max_bytes=len(data) - 1)
    with pytest.raises(TooManyBytesError):
        load_image(b"GIF89a" + bytes(100), source=SOURCE, max_bytes=50)  # before the format check


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims width x height (valid CRC): a decompression-bomb header."""
    data = bytearray(encode(uniform("L", 0, (8, 8))))
    ihdr = bytearray(data[12:29])  # type + 13 bytes of data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(uniform("RGB", 0, (8, 8)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("make", [png_claiming, jpeg_claiming], ids=["png", "jpeg"])
def test_too_many_pixels_from_the_header_before_decoding(make):
    data = make(60_000, 60_000)  # 3.6 gigapixels claimed by a file of a few hundred bytes
    assert len(data) < 1000
    with pytest.raises(TooManyPixelsError) as error:
        load_image(data, source=SOURCE)
    assert "60000x60000" in str(error.value) and SOURCE in str(error.value)


def test_pixel_limit_is_configurable():
    data = encode(uniform("RGB", 0, (100, 50)))
    assert load_image(data, source=SOURCE, max_pixels=5000).shape == (224, 224, 3)
    with pytest.raises(TooManyPixelsError):
        load_image(data, source=SOURCE, max_pixels=4999)


def test_pillows_own_bomb_guard_maps_to_too_many_pixels(monkeypatch):
    data = encode(uniform("RGB", 0, (100, 50)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(TooManyPixelsError, match="Pillow"):
        load_image(data, source=SOURCE, max_pixels=10**9)


@pytest.fixture(params=[False, True], ids=["pillow-default", "LOAD_TRUNCATED_IMAGES-on"])
def truncated_images_flag(request, monkeypatch):
    """Run with Pillow's process-wide switch off and on: it must never hide a truncation."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", request.param)
    return request.param


@pytest.fixture(scope="module")
def complete_files(street_jpeg) -> dict[str, bytes]:
    frame = Image.open(io.BytesIO(street_jpeg))
    return {
        "JPEG": street_jpeg,
        "JPEG-progressive": encode(frame, "JPEG", quality=85, progressive=True),
        "PNG": encode(frame),
    }


@pytest.mark.parametrize("kind", ["JPEG", "JPEG-progressive", "PNG"])
@pytest.mark.parametrize("keep", [0.5, 0.9, -2], ids=["half", "90pc", "all-but-2-bytes"])
def test_truncated(complete_files, truncated_images_flag, kind, keep):
    data = complete_files[kind]
    assert load_image(data, source=SOURCE).shape == (224, 224, 3)  # the complete file is fine
    cut = data[:keep] if isinstance(keep, int) else data[: int(len(data) * keep)]
    with pytest.raises(TruncatedImageError) as error:
        load_image(cut, source=SOURCE)
    assert SOURCE in str(error.value)
    assert isinstance(error.value, BadInputError)


def test_progressive_and_baseline_jpeg_agree(complete_files, street_pixels):
    progressive = load_image(complete_files["JPEG-progressive"], source=SOURCE)
    assert np.abs(progressive.astype(int) - street_pixels).mean() < 1.0


def test_header_only_files_are_truncated():
    with pytest.raises(TruncatedImageError):
        load_image(PNG_MAGIC, source=SOURCE)
    with pytest.raises(TruncatedImageError):
        load_image(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", source=SOURCE)


def noisy_png() -> bytearray:
    return bytearray(
        encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))
    )


def test_png_damaged_in_transit_fails_its_crc(truncated_images_flag):
    data = noisy_png()
    idat = data.index(b"IDAT")
    data[idat + 40 : idat + 80] = bytes(40)  # bytes flipped, chunk lengths intact, CRC now wrong
    with pytest.raises(TruncatedImageError, match="IDAT chunk fails its CRC check"):
        load_image(bytes(data), source=SOURCE)


def test_png_with_a_broken_zlib_stream_but_valid_crc():
    data = noisy_png()
    idat = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[idat - 4 : idat])
    data[idat + 40 : idat + 80] = bytes(40)
    data[idat + 4 + length : idat + 8 + length] = struct.pack(
        ">I", zlib.crc32(bytes(data[idat : idat + 4 + length]))
    )
    with pytest.raises(TruncatedImageError, match="cannot be decoded"):
        load_image(bytes(data), source=SOURCE)


def test_jpeg_without_image_data():
    with pytest.raises(TruncatedImageError, match="end-of-image marker before any image data"):
        load_image(b"\xff\xd8\xff\xe0\x00\x04ab\xff\xd9", source=SOURCE)


# --- JPEG draft ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "decoded"),
    [
        ((1280, 720), (640, 360)),
        ((1792, 1008), (448, 252)),
        ((1920, 1080), (480, 270)),
        ((224, 224), (224, 224)),
    ],
)
def test_draft_decodes_at_the_smallest_scale_still_covering_the_target(size, decoded):
    data = encode(uniform("RGB", (1, 2, 3), size), "JPEG")
    image, header, _ = image_loader._open(
        data, "jpeg", boxes=[WHOLE_FRAME], size=224, draft=True, max_pixels=10**8, source=SOURCE
    )
    image.load()
    assert image.size == (header.width, header.height) == decoded  # the cost is counted at the draft size
    full, header, _ = image_loader._open(
        data, "jpeg", boxes=[WHOLE_FRAME], size=224, draft=False, max_pixels=10**8, source=SOURCE
    )
    full.load()
    assert full.size == (header.width, header.height) == size


def test_draft_and_full_decode_agree_closely(street_jpeg, street_pixels):
    full = load_image(street_jpeg, source=SOURCE, draft=False)
    difference = np.abs(street_pixels.astype(np.int16) - full.astype(np.int16))
    assert difference.mean() < 1.0
    assert not np.array_equal(street_pixels, full)  # the draft path really is a different decode


def test_loading_is_deterministic(street_jpeg, street_pixels):
    assert np.array_equal(load_image(street_jpeg, source=SOURCE), street_pixels)
