"""What each path ships: the Lambda artifact's size vs the notebook way's dependency closure."""

from __future__ import annotations

from pathlib import Path

from bench import stats
from bench.config import (
    BenchConfig,
)
from functions.errors import CamsortError


def handler_package_mib(config: BenchConfig) -> tuple[float | None, str]:
    """Unzipped size of the Lambda artifact `camsort package` builds (arm64, the deployed one)."""
    from infra.deploy.package import build_lambda_package

    try:
        report = build_lambda_package(architecture="arm64", out_dir=config.work_dir / "package")
    except CamsortError as exc:
        return None, f"Lambda package not measured: {exc}"
    return round(
        report.unzipped_bytes / stats.MIB, 1
    ), f"Lambda package: {report.artifact.name}, arm64, unzipped"


def installed_closure_mib(distributions: tuple[str, ...]) -> float:
    """Installed size of ``distributions`` and everything they require, in this venv."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: set[str] = set()
    pending = [d.lower() for d in distributions]
    total = 0
    while pending:
        name = pending.pop().replace("_", "-").lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for file in dist.files or []:
            located = Path(dist.locate_file(file))
            if located.is_file():
                total += located.stat().st_size
        for raw in dist.requires or []:
            requirement = Requirement(raw)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return round(total / stats.MIB, 1)
