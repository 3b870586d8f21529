"""functions.frames.decode_cost / decode_budget and the loader's memory-lean conversion.

The cost model's figures are exact byte counts for a 1000 x 600 frame (600,000 pixels) decoded
to 224 x 224. The terms: Pillow's storage (1 byte a pixel for 1/L/P, 2 for 16-bit grey, 4 for
every multi-band mode), the PNG decoder's two scanlines at the file's depth, the conversion's
full-size output (1 byte a pixel for grey, 4 for RGB) plus one strip of 262 rows x 1000 x 24
bytes = 6,288,000, the resize's intermediate of 224 x 600 (the source height) x the output's bytes a pixel.
Whether the model bounds what the process really holds is measured in the bench
(bench/decode_memory.py: estimate vs peak RSS for every case).
"""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from bench.crafted import PngCase, crafted_png
from functions.errors import TooMuchDecodeMemoryError
from functions.frames import image_loader
from functions.frames.decode_budget import MIB, DecodeBudget, budget_bytes
from functions.frames.decode_cost import FrameHeader, decode_cost
from functions.frames.image_loader import IMAGE_SIZE, frame_header, load_image

W, H = 1000, 600
STRIP = 262 * 1000 * 24  # 6,288,000


def png_header(case: PngCase) -> FrameHeader:
    return frame_header(crafted_png(case, W, H), source="t", max_pixels=10**9)


# (colour type, bit depth, tRNS) -> (Pillow mode, exact decode cost in bytes)
PNG_COSTS = {
    (0, 1, False): ("1", 600_000 + 600_000 + STRIP),  # 1-bit -> one 8-bit band
    (0, 2, False): ("L", 224 * 600 + 600_000),  # plain L: nothing converted, resize dominates
    (0, 4, False): ("L", 224 * 600 + 600_000),
    (0, 8, False): ("L", 224 * 600 + 600_000),
    (0, 16, False): ("I;16", 1_200_000 + 600_000 + STRIP),  # 2 bytes a pixel -> 1
    (2, 8, False): ("RGB", 2_400_000 + 224 * 600 * 4),  # used as decoded
    (2, 16, False): ("RGB", 2_400_000 + 224 * 600 * 4),  # Pillow reads 16-bit RGB as 8-bit
    (3, 1, False): ("P", 600_000 + 2_400_000 + STRIP),  # palette expansion to RGB
    (3, 2, False): ("P", 600_000 + 2_400_000 + STRIP),
    (3, 4, False): ("P", 600_000 + 2_400_000 + STRIP),
    (3, 8, False): ("P", 600_000 + 2_400_000 + STRIP),
    (4, 8, False): ("LA", 2_400_000 + 2_400_000 + STRIP),  # LA is 4 bytes a pixel in Pillow
    (4, 16, False): ("RGBA", 2_400_000 + 2_400_000 + STRIP),
    (6, 8, False): ("RGBA", 2_400_000 + 2_400_000 + STRIP),
    (6, 16, False): ("RGBA", 2_400_000 + 2_400_000 + STRIP),
    (0, 1, True): ("1", 600_000 + 600_000 + STRIP),
    (0, 8, True): ("L", 600_000 + 600_000 + STRIP),  # a grey key: one band, converted
    (0, 16, True): ("I;16", 1_200_000 + 600_000 + STRIP),
    (2, 8, True): ("RGB", 2_400_000 + 2_400_000 + STRIP),  # a colour key: RGB again, on white
    (2, 16, True): ("RGB", 2_400_000 + 2_400_000 + STRIP),
    (3, 8, True): ("P", 600_000 + 2_400_000 + STRIP),
}


@pytest.mark.parametrize(("kind", "expected"), list(PNG_COSTS.items()), ids=lambda v: str(v))
def test_png_cost_of_every_colour_type_and_bit_depth(kind, expected):
    header = png_header(PngCase(*kind))
    assert (header.mode, decode_cost(header, IMAGE_SIZE)) == expected


def test_png_scanlines_count_at_the_files_depth_and_bands():
    # A 1 x N frame: the two 16-bit RGBA scanlines of the decoder outweigh the image.
    header = frame_header(crafted_png(PngCase(6, 16), 200_000, 1), source="t", max_pixels=10**9)
    assert header.png_row_bytes == 200_000 * 8
    loaded = 800_000 + 2 * (1_600_000 + 1)
    converted = 800_000 + 800_000 + 200_000 * 24
    assert decode_cost(header, IMAGE_SIZE) == max(loaded, converted) == 6_400_000


def jpeg(mode: str, **save) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (W, H), 0).save(buffer, "JPEG", **save)
    return buffer.getvalue()


def jpeg_header(data: bytes, draft: bool = True) -> FrameHeader:
    return frame_header(data, source="t", draft=draft, max_pixels=10**9)


def test_jpeg_cmyk_is_four_bytes_a_pixel_at_the_draft_size_and_converted_to_rgb():
    header = jpeg_header(jpeg("CMYK"))
    assert (header.mode, header.width, header.height) == ("CMYK", 500, 300)  # draft 1/2 keeps >= 224
    # 150,000 pixels: CMYK 600,000 + RGB 600,000 + one strip (the whole frame) x 24.
    assert decode_cost(header, IMAGE_SIZE) == 600_000 + 600_000 + 150_000 * 24 == 4_800_000


def test_progressive_jpeg_counts_libjpegs_full_size_coefficients_whatever_the_draft():
    header = jpeg_header(jpeg("RGB", progressive=True))
    coefficients = 125 * 75 * 64 * 2 * 3  # 8x8 blocks of the FULL 1000x600 frame, 3 components
    assert header.jpeg_coefficient_bytes == coefficients == 3_600_000
    assert decode_cost(header, IMAGE_SIZE) == 500 * 300 * 4 + coefficients  # the load is the peak
    assert jpeg_header(jpeg("RGB")).jpeg_coefficient_bytes == 0  # baseline: one scan, no buffer


def test_exif_that_may_rotate_counts_a_second_copy_of_the_8_bit_image():
    exif = Image.Exif()
    exif[0x0112] = 6
    header = jpeg_header(jpeg("RGB", exif=exif.tobytes()), draft=False)
    assert header.may_rotate and (header.width, header.height) == (W, H)
    assert decode_cost(header, IMAGE_SIZE) == 2 * 2_400_000


def test_a_frame_over_the_per_frame_limit_is_refused_before_any_pixel_is_decoded():
    data = crafted_png(PngCase(6, 8), W, H)  # 11,088,000 bytes to decode
    with pytest.raises(
        TooMuchDecodeMemoryError, match=r"hold 11 MiB, more than the limit of 10 MiB"
    ) as raised:
        load_image(data, source="s3://b/frames/cam-1/x.png", max_decode_bytes=10 * MIB)
    assert raised.value.reason == "too_much_decode_memory"
    assert load_image(data, source="s", max_decode_bytes=11 * MIB).shape == (224, 224, 3)


# --- the lean conversion gives the same pixels ---------------------------------------------------


def test_sixteen_bit_scaling_in_integers_equals_the_rounded_float_formula_for_every_value():
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    expected = np.rint(values.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    assert np.array_equal(image_loader._to_uint8_grey(values, "I;16"), expected)


def test_grey_resized_as_one_band_equals_resizing_its_rgb_copy():
    grey = Image.fromarray(np.random.default_rng(3).integers(0, 256, (601, 997), dtype=np.uint8))
    one_band = grey.resize((224, 224), Image.Resampling.BILINEAR).convert("RGB")
    three_bands = grey.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
    assert np.array_equal(np.asarray(one_band), np.asarray(three_bands))


def test_alpha_converted_in_strips_equals_converting_the_whole_frame():
    rgba = Image.fromarray(np.random.default_rng(4).integers(0, 256, (700, 800, 4), dtype=np.uint8), "RGBA")
    buffer = io.BytesIO()
    rgba.save(buffer, "PNG")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    whole = Image.alpha_composite(white, rgba).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
    assert np.array_equal(load_image(buffer.getvalue(), source="t"), np.asarray(whole))


# --- the shared budget ---------------------------------------------------------------------------


def test_budget_is_the_memory_left_after_the_container_and_the_inference_reserve():
    total = budget_bytes(
        memory_mb=1769, resident_bytes=315 * MIB, model_bytes=90 * MIB, per_frame_bytes=192 * MIB
    )
    assert total == (1769 - 315 - 135) * MIB
    # Never below one frame at the per-frame limit; unknown memory: the per-frame limit.
    assert (
        budget_bytes(memory_mb=512, resident_bytes=600 * MIB, model_bytes=0, per_frame_bytes=192 * MIB)
        == 192 * MIB
    )
    assert (
        budget_bytes(memory_mb=None, resident_bytes=0, model_bytes=0, per_frame_bytes=192 * MIB) == 192 * MIB
    )


def test_frames_that_do_not_fit_together_wait_for_each_other():
    budget = DecodeBudget(100)
    inside, most = [], []
    lock = threading.Lock()

    def decode(cost: int) -> None:
        with budget.hold(cost):
            with lock:
                inside.append(cost)
                most.append(sum(inside))
            time.sleep(0.02)
            with lock:
                inside.remove(cost)

    threads = [threading.Thread(target=decode, args=(cost,)) for cost in (60, 60, 30, 70, 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(most) <= 100 and budget.peak_held <= 100 and budget.held == 0
    with pytest.raises(ValueError, match="can never fit"), budget.hold(101):
        pass
