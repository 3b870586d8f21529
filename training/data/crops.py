"""`camsort crops`: the regions of every frame, cut by the function's crop function, into folders.

For a person to label, or to train on as they are (crops already in label folders train like
any folder: ``camsort train OUT/<model>``). Each crop is cut by
``functions.frames.image_loader.load_regions`` with its camera's whole box list (the decode scale
the function uses) and written as a 224x224 PNG, losslessly: the loader reads it back to the
very same pixels, so a model trained on these folders sees what the function will feed it.

    OUT/<model>/<label>/<frame>-<region>.png        labels given: every labelled region
    OUT/<model>/_unlabeled/<region>/<frame>-<region>.png   no labels: every region, by region

``_unlabeled`` is the folder the training loader ignores (``training.data.loading``): move a
crop into ``OUT/<model>/<label>/`` to label it. ``<frame>`` is the frame's key with ``/`` as ``__``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from functions.errors import BadInputError
from functions.frames.image_loader import load_regions
from training.data.label_files import DatasetError
from training.data.loading import (
    UNLABELED_FOLDER,
    Candidate,
    MissingObject,
    labelled_candidate,
    list_local,
    list_s3,
    parse_s3_uri,
    run_parallel,
)
from training.data.region_dataset import read_cameras_config, read_text
from training.data.region_labels import camera_of, parse_region_labels


@dataclass(frozen=True)
class CropsWritten:
    counts: dict[str, int]  # "<model>/<folder>" -> crops written
    frames: int
    skipped: list[str]  # one sentence per frame that could not be cut


def write_crops(
    source: str,
    config: str,
    out_dir: Path,
    *,
    labels_file: str | None = None,
    model_name: str | None = None,
    s3_client: Any = None,
    progress: bool = True,
) -> CropsWritten:
    """Cut every frame under ``source`` (or every frame ``labels_file`` names) into ``out_dir``."""
    configs = read_cameras_config(config, s3_client)
    labels: dict[str, dict[str, str]] = {}
    if labels_file:
        for row in parse_region_labels(read_text(labels_file, s3_client, "region labels file"), labels_file):
            labels.setdefault(row.key, {})[row.region] = row.label
        frames = [(key, labelled_candidate(source, key, "", s3_client)) for key in labels]
    else:
        frames = _listed(source, s3_client)
    if not frames:
        raise DatasetError(f"{source}: no .jpg/.jpeg/.png frames under <camera_id>/ folders")
    out_dir = Path(out_dir)

    def cut(frame: tuple[str, Candidate]) -> list[str] | str:
        key, candidate = frame
        regions = camera_of(key, configs, config).effective_regions()
        try:
            crops = load_regions(candidate.fetch(), [r.box for r in regions], source=candidate.uri)
        except (BadInputError, MissingObject, OSError) as exc:
            return f"{candidate.uri}: {exc}"
        written = []
        stem = Path(key.replace("/", "__")).stem
        for region, crop in zip(regions, crops, strict=True):
            if model_name and region.model != model_name:
                continue
            if labels_file:
                if region.name not in labels[key]:
                    continue
                folder = Path(region.model) / labels[key][region.name]
            else:
                folder = Path(region.model) / UNLABELED_FOLDER / region.name
            (out_dir / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(crop).save(out_dir / folder / f"{stem}-{region.name}.png")
            written.append(folder.as_posix())
        return written

    results = run_parallel(cut, frames, max_workers=4, progress=progress, what=source)
    counts = Counter(folder for result in results if isinstance(result, list) for folder in result)
    skipped = [result for result in results if isinstance(result, str)]
    return CropsWritten(dict(sorted(counts.items())), len(frames) - len(skipped), skipped)


def _listed(source: str, s3_client: Any) -> list[tuple[str, Candidate]]:
    """Every frame under ``source`` and its key relative to it (``<camera_id>/<name>``)."""
    if source.startswith("s3://"):
        _, prefix = parse_s3_uri(source)
        candidates, _ = list_s3(source, s3_client=s3_client, page_size=1000)
        return [(c.uri.split("/", 3)[3][len(prefix) :], c) for c in candidates]
    candidates, _ = list_local(source)
    root = Path(source).expanduser().resolve()
    return [(Path(c.uri).relative_to(root).as_posix(), c) for c in candidates]


def crops_command(
    source: str, config: str, out_dir: Path, *, endpoint_url: str | None = None, **options
) -> CropsWritten:
    """`camsort crops`: cut, write, and print a table of what went where."""
    from rich.console import Console
    from rich.table import Table

    s3_client = None
    if endpoint_url or any(
        str(v).startswith("s3://") for v in (source, config, options.get("labels_file") or "")
    ):
        import boto3

        s3_client = boto3.client("s3", endpoint_url=endpoint_url)
    written = write_crops(source, config, out_dir, s3_client=s3_client, **options)
    console = Console()
    table = Table("folder", "crops", title=f"crops of {written.frames} frames in {out_dir}")
    for folder, count in written.counts.items():
        table.add_row(folder, str(count))
    console.print(table)
    for sentence in written.skipped:
        console.print(f"[yellow]skipped[/] {sentence}")
    return written
