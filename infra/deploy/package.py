"""Build the Lambda artifact: pinned wheels for the Lambda platform + ``functions/``, zipped.

The artifact is what serverless.yml deploys (``package.artifact: build/lambda-<arch>.zip``):

1. download the wheels pinned in ``requirements.txt`` for CPython 3.12 on manylinux
   (Lambda's python3.12 runtime is Amazon Linux 2023, glibc 2.34) into a cache under
   ``.cache/lambda-wheels/<arch>/`` (later builds are offline);
2. ``pip install --target`` them (``--no-deps``: requirements.txt is the full pinned closure,
   so nothing unpinned can slip in; ``--no-compile``: no .pyc written by a different Python);
3. copy ``functions/`` (the only project code the function imports);
4. prune what the function never imports (tests, build headers, type stubs, onnxruntime's
   offline tools, console scripts, caches);
5. zip deterministically (sorted entries, fixed timestamps and modes) and measure it:
   above 250 MB unzipped Lambda refuses the function, so the build fails there, and it
   warns above 150 MB.

The model is not embedded by default: the function downloads ``model.onnx`` +
``manifest.json`` from S3 once per container (``CAMSORT_MODEL_URI``), so a new model does
not need a new code package. ``embed_model=`` puts them under ``model/`` in the zip
instead (then set ``CAMSORT_MODEL_URI=/var/task/model/``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from functions.errors import CamsortError, ConfigurationError, ModelArtifactError
from functions.frames.manifest import sha256_file
from infra import PROJECT_ROOT
from infra.deploy.native import elf_machine, foreign_libraries, wheel_tags

__all__ = ["elf_machine", "wheel_tags"]  # re-exported: the package's checks read them

ARCHIVE_REQUIREMENTS = PROJECT_ROOT / "requirements-archive.txt"

# Lambda's hard limit for a function's unzipped code (layers included): 250 MB.
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
WARN_UNZIPPED_BYTES = 150 * 1024 * 1024
PYTHON_VERSION = "3.12"

# Lambda architecture name -> machine name in manylinux wheel tags and ELF e_machine.
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
ELF_MACHINE_CODES = {"aarch64": 183, "x86_64": 62}
# Amazon Linux 2023 has glibc 2.34: every manylinux tag up to 2_34 runs there.
MAX_GLIBC_MINOR = 34

# Shipped by the Lambda python3.12 runtime itself; left out with ``include_boto=False``.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")

# Paths (relative to the package root, fnmatch patterns) the function never imports.
PRUNE_PATTERNS = (
    "bin",  # console scripts, with a shebang pointing at the build machine's Python
    "*/__pycache__",
    "*.pyc",
    "*/tests",
    "*/test",
    "*.pyi",
    "*.pxd",
    "*.h",
    "*.a",
    "*/py.typed",
    "numpy/_core/include",
    "numpy/_pyinstaller",
    "numpy/f2py/_backends/meson.build.template",
    "numpy/random/_examples",
    # onnxruntime's offline tooling (model conversion, quantization, transformer
    # optimisation, the ONNX backend test API); they import onnx/torch, which are not here.
    "onnxruntime/tools",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/datasets",
    "onnxruntime/backend",
    # pyarrow's Flight RPC, Substrait and Gandiva: imported only on demand, never by compaction
    # or the results export (they read and write Parquet), and a third of pyarrow's size.
    "pyarrow/libarrow_flight.so*",
    "pyarrow/_flight*.so",
    "pyarrow/libarrow_substrait.so*",
    "pyarrow/_substrait*.so",
    "pyarrow/libgandiva.so*",
    "pyarrow/gandiva*.so",
    "pyarrow/include",
    "pyarrow/src",
    # Pillow GUI bindings: no display in Lambda.
    "PIL/ImageTk.py",
    "PIL/ImageQt.py",
    "PIL/_tkinter_finder.py",
    "PIL/_imagingtk*.so",
    # dist-info bits nobody reads at run time; RECORD would also list pruned files.
    "*.dist-info/RECORD",
    "*.dist-info/INSTALLER",
    "*.dist-info/REQUESTED",
    "*.dist-info/direct_url.json",
)

# Fixed zip timestamp: the earliest a zip can hold, so the bytes do not depend on the clock.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class PackageTooLargeError(CamsortError):
    """The unzipped artifact is above Lambda's 250 MB limit."""


class PackageBuildError(CamsortError):
    """pip could not download or install the pinned wheels for the Lambda platform."""


@dataclass(frozen=True)
class PackageEntry:
    """One top-level item of the artifact (a package, a module, or the dist-info files)."""

    name: str
    files: int
    unzipped_bytes: int
    zipped_bytes: int


@dataclass
class PackageReport:
    artifact: Path
    architecture: str
    sha256: str
    unzipped_bytes: int
    zipped_bytes: int
    entries: list[PackageEntry]
    wheels: list[str]
    include_boto: bool
    embedded_model: bool
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        data = asdict(self)
        data["artifact"] = str(self.artifact)
        return data


def platform_tags(architecture: str) -> list[str]:
    """pip ``--platform`` values accepted by Lambda's python3.12 runtime for ``architecture``."""
    machine = _machine(architecture)
    tags = [f"manylinux2014_{machine}"]
    tags += [f"manylinux_2_{minor}_{machine}" for minor in range(17, MAX_GLIBC_MINOR + 1)]
    return tags


def pinned_requirements(requirements: Path, *, include_boto: bool) -> list[str]:
    """The ``name==version`` lines of ``requirements``, without the runtime-provided ones if asked."""
    lines = []
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not version.strip():
            raise ConfigurationError(
                f"{requirements}: '{line}' is not pinned as name==version; the Lambda package "
                "only installs exact pins (regenerate the file with pip --dry-run --report)"
            )
        if not include_boto and _canonical(name) in {_canonical(n) for n in RUNTIME_PROVIDED}:
            continue
        lines.append(f"{name.strip()}=={version.strip()}")
    return lines


def build_lambda_package(
    *,
    architecture: str = "arm64",
    out_dir: Path = PROJECT_ROOT / "build",
    requirements: Path = PROJECT_ROOT / "requirements.txt",
    functions_dir: Path = PROJECT_ROOT / "functions",
    wheel_cache: Path = PROJECT_ROOT / ".cache" / "lambda-wheels",
    include_boto: bool = True,
    embed_model: Path | None = None,
    limit_bytes: int = LAMBDA_UNZIPPED_LIMIT_BYTES,
    warn_bytes: int = WARN_UNZIPPED_BYTES,
    name: str = "lambda",
) -> PackageReport:
    """Build ``out_dir/<name>-<architecture>.zip`` (+ ``.json`` report) and return its report.

    ``name="archive"`` with ``requirements=ARCHIVE_REQUIREMENTS`` is the archive functions'
    artifact (compact, exportResults): pyarrow instead of onnxruntime and Pillow, so the
    classify artifact stays as lean as it was.

    Raises ``PackageTooLargeError`` above ``limit_bytes`` unzipped (the zip is still written,
    so it can be inspected), ``PackageBuildError`` when pip fails, ``ConfigurationError`` /
    ``ModelArtifactError`` for bad arguments.
    """
    machine = _machine(architecture)
    if not functions_dir.joinpath("__init__.py").is_file():
        raise ConfigurationError(f"{functions_dir} is not the functions package (no __init__.py)")
    if embed_model is not None:
        model_files = _model_files(embed_model)
    requirement_lines = pinned_requirements(requirements, include_boto=include_boto)
    wheel_dir = wheel_cache / architecture
    wheel_dir.mkdir(parents=True, exist_ok=True)
    pinned_file = wheel_dir / "requirements.lambda.txt"
    pinned_file.write_text("\n".join(requirement_lines) + "\n")

    _download_wheels(pinned_file, wheel_dir, architecture)
    staging = out_dir / f"{name}-{architecture}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    _install_wheels(pinned_file, wheel_dir, staging, architecture)
    _copy_tree(functions_dir, staging / "functions")
    if embed_model is not None:
        (staging / "model").mkdir()
        for source in model_files:
            shutil.copyfile(source, staging / "model" / source.name)
    prune(staging)
    _check_native_libraries(staging, machine)

    artifact = out_dir / f"{name}-{architecture}.zip"
    write_deterministic_zip(staging, artifact)
    entries = measure_zip(artifact)
    unzipped = sum(e.unzipped_bytes for e in entries)
    report = PackageReport(
        artifact=artifact,
        architecture=architecture,
        sha256=sha256_file(artifact),
        unzipped_bytes=unzipped,
        zipped_bytes=artifact.stat().st_size,
        entries=entries,
        wheels=sorted(
            p.name
            for p in wheel_dir.glob("*.whl")
            if _canonical(p.name.split("-")[0]) in {_canonical(r.split("==")[0]) for r in requirement_lines}
        ),
        include_boto=include_boto,
        embedded_model=embed_model is not None,
    )
    report.warnings.extend(check_size(artifact, unzipped, limit_bytes=limit_bytes, warn_bytes=warn_bytes))
    artifact.with_suffix(".json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return report


def check_size(
    artifact: Path,
    unzipped_bytes: int,
    *,
    limit_bytes: int = LAMBDA_UNZIPPED_LIMIT_BYTES,
    warn_bytes: int = WARN_UNZIPPED_BYTES,
) -> list[str]:
    """Warnings for a large artifact; ``PackageTooLargeError`` above Lambda's limit."""
    if unzipped_bytes > limit_bytes:
        raise PackageTooLargeError(
            f"{artifact}: {_mb(unzipped_bytes)} unzipped is above Lambda's limit of {_mb(limit_bytes)}; "
            "Lambda would refuse it. Leave the model in S3 (no --embed-model), use the runtime's boto3 "
            "(--runtime-boto) or add prune patterns in infra/deploy/package.py."
        )
    if unzipped_bytes > warn_bytes:
        return [
            f"{artifact}: {_mb(unzipped_bytes)} unzipped is above {_mb(warn_bytes)}, close to Lambda's "
            f"{_mb(LAMBDA_UNZIPPED_LIMIT_BYTES)} limit (layers included). Leave the model in S3 (no "
            "--embed-model) or use the runtime's boto3 (--runtime-boto)."
        ]
    return []


def prune(root: Path) -> list[str]:
    """Delete every path under ``root`` matching ``PRUNE_PATTERNS``; return what was removed."""
    removed = []
    # Sorted walk, deepest first is not needed: a removed directory is skipped by the check.
    for path in sorted(root.rglob("*")):
        if not path.exists() and not path.is_symlink():
            continue
        relative = path.relative_to(root).as_posix()
        if any(fnmatch.fnmatchcase(relative, pattern) for pattern in PRUNE_PATTERNS):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(relative)
    return removed


def write_deterministic_zip(root: Path, artifact: Path) -> None:
    """Zip ``root`` so that the same files always give the same bytes."""
    artifact.parent.mkdir(parents=True, exist_ok=True)
    tmp = artifact.with_suffix(".zip.tmp")
    files = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix())
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the modes below are honoured
            # Only two modes, so the build machine's umask cannot change the bytes.
            executable = os.access(path, os.X_OK) or path.suffix == ".so" or ".so." in path.name
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            with path.open("rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1024 * 1024)
    tmp.replace(artifact)


def measure_zip(artifact: Path) -> list[PackageEntry]:
    """Unzipped and zipped bytes per top-level item, largest first (dist-info files grouped)."""
    files: dict[str, int] = defaultdict(int)
    unzipped: dict[str, int] = defaultdict(int)
    zipped: dict[str, int] = defaultdict(int)
    with zipfile.ZipFile(artifact) as archive:
        for info in archive.infolist():
            top = info.filename.split("/", 1)[0]
            if top.endswith(".dist-info"):
                top = "*.dist-info"
            files[top] += 1
            unzipped[top] += info.file_size
            zipped[top] += info.compress_size
    entries = [PackageEntry(name, files[name], unzipped[name], zipped[name]) for name in files]
    return sorted(entries, key=lambda e: (-e.unzipped_bytes, e.name))


# --- internals -----------------------------------------------------------------------------


def _machine(architecture: str) -> str:
    if architecture not in MACHINES:
        raise ConfigurationError(
            f"unknown Lambda architecture '{architecture}': use one of {', '.join(sorted(MACHINES))}"
        )
    return MACHINES[architecture]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip_platform_args(architecture: str) -> list[str]:
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_VERSION]
    for tag in platform_tags(architecture):
        args += ["--platform", tag]
    return args


def _run_pip(args: list[str], what: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackageBuildError(
            f"pip could not {what} (exit {result.returncode}); check the pins and that the package "
            f"registry is reachable.\ncommand: {' '.join(command)}\n{result.stderr[-3000:]}"
        )
    return result


def _download_wheels(pinned_file: Path, wheel_dir: Path, architecture: str) -> None:
    common = ["download", "--quiet", "--no-deps", *_pip_platform_args(architecture), "-d", str(wheel_dir)]
    common += ["-r", str(pinned_file)]
    # Offline first: once every pinned wheel is cached, the registry is not contacted.
    offline = [*common, "--no-index", "--find-links", str(wheel_dir)]
    cached = subprocess.run([sys.executable, "-m", "pip", *offline], capture_output=True, check=False)
    if cached.returncode == 0:
        return
    _run_pip(common, f"download the Lambda wheels listed in {pinned_file}")


def _install_wheels(pinned_file: Path, wheel_dir: Path, target: Path, architecture: str) -> None:
    _run_pip(
        [
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
            "--no-index",
            "--find-links",
            str(wheel_dir),
            "--target",
            str(target),
            *_pip_platform_args(architecture),
            "-r",
            str(pinned_file),
        ],
        f"install the cached Lambda wheels from {wheel_dir} into {target}",
    )


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


def _model_files(model_dir: Path) -> list[Path]:
    files = [model_dir / "model.onnx", model_dir / "manifest.json"]
    for path in files:
        if not path.is_file():
            raise ModelArtifactError(
                f"{path} is missing: --embed-model needs a model directory holding model.onnx and "
                "manifest.json (the output of `camsort train` / `camsort export`)"
            )
    return files


def _check_native_libraries(root: Path, machine: str) -> None:
    """Every shared library must be built for the target CPU (a wrong wheel would crash at import)."""
    wrong = foreign_libraries(root, ELF_MACHINE_CODES[machine])
    if wrong:
        raise PackageBuildError(
            f"{root}: {len(wrong)} shared libraries are not built for {machine}: {', '.join(wrong[:5])}; "
            f"delete the wheel cache and rebuild"
        )


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
