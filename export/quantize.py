"""int8 backbone: onnxruntime static quantization, QDQ format, calibrated on real frames.

Per-channel int8 weights with uint8 activations (docs/design.md, "int8": 3.2x faster than fp32 on the
development machine; int8/int8 was no faster, dynamic quantization far slower). The uint8
``image`` input and the preprocessing in front of the first convolution stay as they are:
only float tensors are quantized.

The saved file is the quantizer's output as is: it is never saved after onnxruntime's
ALL-level optimizations (those rewrite the graph for the CPU that saved it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from export.backbone import progress_status
from export.child import child_exit_code
from functions.errors import ConfigurationError
from functions.frames.manifest import IMAGE_SIZE, INPUT_NAME


def _calibration_reader(images_uint8: np.ndarray, batch_size: int):
    from onnxruntime.quantization import CalibrationDataReader

    class FrameReader(CalibrationDataReader):
        """Feeds the calibration frames to the backbone, ``batch_size`` at a time."""

        def __init__(self) -> None:
            self._starts = iter(range(0, len(images_uint8), batch_size))

        def get_next(self) -> dict[str, np.ndarray] | None:
            start = next(self._starts, None)
            if start is None:
                return None
            return {INPUT_NAME: images_uint8[start : start + batch_size]}

    return FrameReader()


def quantize_backbone(
    fp32_path: Path | str,
    out_path: Path | str,
    calibration_images: np.ndarray,
    *,
    batch_size: int = 1,
    progress: bool = False,
    reduce_range: bool = False,
) -> Path:
    """Quantize the fp32 backbone at ``fp32_path`` to ``out_path`` (static QDQ, per-channel).

    ``calibration_images``: uint8 [N,224,224,3] training frames; their activation ranges
    (min/max) set the uint8 scales, so they should look like what the cameras send.
    ``batch_size``: frames per calibration run. MinMax keeps each tensor's min and max over every
    run, so the file is the same whatever the batch (checked: byte-identical at 1 and 8), while the
    calibration session's memory is not: 2.2 GB peak at 8 frames a run, 0.7 GB at 1 (measured).
    ``reduce_range``: 7-bit weights, so AVX2's VPMADDUBSW (two u8 x s8 products summed into
    an int16) cannot saturate; costs one bit of weight precision (the bench measures both).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if not fp32_path.is_file():
        raise ConfigurationError(
            f"fp32 backbone {fp32_path} does not exist: export it first (export_backbone)"
        )
    images = np.asarray(calibration_images)
    if (
        images.dtype != np.uint8
        or images.ndim != 4
        or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3)
        or not len(images)
    ):
        raise ConfigurationError(
            f"calibration images must be uint8 [N>0,{IMAGE_SIZE},{IMAGE_SIZE},3], got {images.dtype} {images.shape}"
        )
    try:
        onnx.checker.check_model(str(fp32_path))
    except onnx.checker.ValidationError as error:
        raise ConfigurationError(
            f"fp32 backbone {fp32_path} is not a valid ONNX model ({error}): export it again (export_backbone)"
        ) from error
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="camsort-quantize-") as work:
        # Shape inference + basic graph clean-up (BatchNorm already folded by tf2onnx) so the
        # quantizer sees every tensor's type and shape. quant_pre_process optimizes at the
        # BASIC level only, which is hardware independent.
        prepared = Path(work) / "prepared.onnx"
        with progress_status(f"Quantizing the backbone to int8 ({len(images)} calibration frames)", progress):
            quant_pre_process(str(fp32_path), str(prepared))
            quantize_static(
                str(prepared),
                str(out_path),
                _calibration_reader(images, batch_size),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                reduce_range=reduce_range,
            )
    return out_path


def quantize_backbone_in_child(
    fp32_path: Path | str, out_path: Path | str, calibration_images: np.ndarray
) -> Path:
    """``quantize_backbone`` in a child process that exits when done (export.child): the
    calibration session and the quantizer's model copies (~2 GB) never stay in the caller."""
    from export.child import run_child

    with tempfile.TemporaryDirectory(prefix="camsort-calibration-") as work:
        frames = Path(work) / "calibration.npy"
        np.save(frames, np.asarray(calibration_images))
        run_child(
            "export.quantize",
            [str(fp32_path), str(out_path), str(frames)],
            f"quantizing {fp32_path} to int8 ({len(calibration_images)} calibration frames)",
        )
    return Path(out_path)


def main(argv: list[str] | None = None) -> int:
    """``python -m export.quantize FP32 OUT FRAMES.npy``: what quantize_backbone_in_child runs."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("fp32", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("frames", type=Path)
    args = parser.parse_args(argv)
    return child_exit_code(lambda: quantize_backbone(args.fp32, args.out, np.load(args.frames)))


if __name__ == "__main__":
    sys.exit(main())
