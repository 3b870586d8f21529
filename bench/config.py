"""The bench's settings (:class:`BenchConfig`), its error and its constants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.report import FP32, INT8, PATHS
from functions.errors import CamsortError

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_VERSION = 1
PRECISIONS = (FP32, INT8)
# The notebook way's runtime dependencies (its package is these plus their closure).
REFERENCE_DISTRIBUTIONS = ("tensorflow-cpu", "keras", "lightgbm", "pillow", "numpy", "boto3")
WEIGHTS_NOTE = (
    "weights `{weights}`: speed does not depend on the weight values, labels do; with random-init "
    "weights the labels (and the draft-vs-full agreement) say nothing about an ImageNet model's."
)


class BenchError(CamsortError):
    """A bench step failed; the message names the step, the file or key, and where to look."""


@dataclass(frozen=True)
class BenchConfig:
    frames: int = 200
    width: int = 1280
    height: int = 720
    train_per_label: int = 30
    weights: str = "none"
    seed: int = 0
    cold_starts: int = 3
    warmup: int = 5
    stage_frames: int = 50
    profile_frames: int = 20
    batch_size: int = 10
    featurize_batch: int = 16
    profile: bool = True
    package: bool = True
    out_dir: Path = REPO_ROOT / "bench"
    work_dir: Path = REPO_ROOT / "bench" / "work"
    cache_dir: Path = REPO_ROOT / ".cache" / "bench"
    paths: tuple[str, ...] = PATHS

    def validate(self) -> None:
        problems = []
        if self.frames < self.batch_size:
            problems.append(f"--frames {self.frames} must be at least the batch size {self.batch_size}")
        if self.frames % self.batch_size:
            problems.append(f"--frames {self.frames} must be a multiple of the batch size {self.batch_size}")
        if self.train_per_label < 10:
            problems.append(f"--train-per-label {self.train_per_label}: cross-validation needs at least 10")
        if self.cold_starts < 1:
            problems.append("--cold-starts must be at least 1")
        unknown = set(self.paths) - set(PATHS)
        if unknown or not self.paths:
            problems.append(f"--paths {sorted(unknown)} unknown; choose from {', '.join(PATHS)}")
        if problems:
            raise BenchError("; ".join(problems))
