"""When to train the head on Dask: the local engine vs the Dask engine on generated feature rows.

``python -m bench.archive_training --rows 100000`` (``make bench-archive``; ``--rows 1000000`` for
the 1M figure) generates N rows x 2048 float16 features drawn from per-label distributions (3
labels, a per-label mean vector plus unit noise; seeded, in blocks of ``--block-rows``) and writes
them once as a feature archive (``functions.archive.compaction.row_schema``, one Parquet part per
block under ``camera=<c>/day=<d>/``; kept under ``--archive-dir`` for the next run). It takes the
grouped folds of ``training.fit.folds`` (groups of 5 rows, as near-duplicates), and for each
engine, in a child process of its own, fits the head (``DEFAULT_PARAMS``) on every fold but fold
0 and scores fold 0, reading the archive as training does at scale:

- local: one process streams the rows of folds 1-4 into LightGBM (``training.fit.streamed``:
  a ``lightgbm.Sequence`` over the Parquet batches), so no float matrix of the rows exists;
- dask: a LocalCluster of 2 worker processes; each worker reads its own share of the part files
  and streams them into LightGBM's data-parallel learner (``training.fit.dask_engine.fit_on_workers``);
  the client holds labels and file names only.

Fold 0 is scored by streaming its rows through the model. Each figure: wall time of the fit
(reading included; writing the archive is reported apart), peak resident memory of the child's
whole process tree (sampled every 0.1 s: client, scheduler, workers), the load average at its
start and end (2 shared cores: other engineers' work slows every figure), and the fold-0 metrics
side by side (distributed LightGBM is not bit-identical).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = 2048
LABELS = 3
GROUP_ROWS = 5
FOLDS = 5
SEED = 0
RESULTS = Path(__file__).resolve().parent / "archive_training.json"
TREES = 200  # DEFAULT_PARAMS' n_estimators
DASK_WORKER_MEMORY = "6GiB"  # each of the 2 workers; the nanny restarts a worker past it


def label_means(features: int = FEATURES, labels: int = LABELS, seed: int = SEED) -> np.ndarray:
    """Per-label mean vectors: each label shifts a random 5 % of the features by +-0.15."""
    rng = np.random.default_rng(seed)
    shift = rng.choice([-0.15, 0.15], size=(labels, features)) * (rng.random((labels, features)) < 0.05)
    return shift.astype(np.float32)


def block(index: int, rows: int, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``[index * rows, (index + 1) * rows)``: (float16 [rows, F], labels [rows]); seeded by index."""
    rng = np.random.default_rng([SEED, index])
    y = rng.integers(0, len(means), rows)
    x = (means[y] + rng.standard_normal((rows, means.shape[1]), dtype=np.float32)).astype(np.float16)
    return x, y


def labels_and_folds(total: int, block_rows: int, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, fold of each row): the labels regenerated cheaply, folds from training.fit.folds."""
    from training.fit.folds import grouped_folds

    y = np.concatenate([block(i, block_rows, means[:, :1])[1] for i in range(total // block_rows)])
    fold_of = np.empty(len(y), dtype=np.int64)
    for fold, (_, valid) in enumerate(
        grouped_folds(y, np.arange(len(y)) // GROUP_ROWS, folds=FOLDS, seed=SEED)
    ):
        fold_of[valid] = fold
    return y, fold_of


ARCHIVE_DIR = Path(tempfile.gettempdir()) / "camsort-bench-archive"
CAMERAS = 4
REPORT_EVERY = 25  # boosting rounds between progress lines on stderr
DAY = datetime(2026, 12, 1, tzinfo=UTC)


def write_archive(directory: Path, rows: int, block_rows: int) -> list[str]:
    """The generated rows as a feature archive (``functions.archive.compaction.row_schema``, one
    part per block under ``camera=<c>/day=<d>/``); kept and reused when already complete.
    Returns the part files in row order, relative to ``directory``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from functions.archive.compaction import row_schema

    files = [
        f"camera=cam-{i % CAMERAS:02d}/day={DAY:%Y-%m-%d}/part-{i:05d}.parquet"
        for i in range(rows // block_rows)
    ]
    if (directory / "_complete").is_file():
        return files
    means = label_means()
    for i, name in enumerate(files):
        x, y = block(i, block_rows, means)
        ids = range(i * block_rows, (i + 1) * block_rows)
        blank = pa.array([""] * block_rows)
        at = pa.array([DAY] * block_rows, type=pa.timestamp("ms", tz="UTC"))
        table = pa.Table.from_arrays(
            [pa.array(["bench"] * block_rows), pa.array([f"training/{y[r]}/{n:07d}.jpg" for r, n in enumerate(ids)]),
             blank, blank, at, pa.array(["0" * 16] * block_rows), blank, blank, blank, at,
             pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), type=pa.float16()), FEATURES)],
            schema=row_schema(FEATURES),
        )  # fmt: skip
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, directory / name, compression="zstd")
    (directory / "_complete").write_text(json.dumps({"rows": rows, "block_rows": block_rows}))
    return files


def run_engine(
    engine: str, rows: int, block_rows: int, directory: Path, rounds: int = TREES
) -> dict[str, Any]:
    """One engine's fit on folds 1..4 and score on fold 0 (in this process), reading the archive
    at ``directory``: the local engine streams it (``training.fit.streamed``), the Dask engine's
    workers each read their own files (``training.fit.dask_engine.fit_on_workers``)."""
    from pyarrow import fs

    from training.fit.metrics import compute_metrics
    from training.fit.streamed import ParquetRows, fit_streamed, predict_streamed, progress_every

    filesystem = fs.SubTreeFileSystem(str(directory), fs.LocalFileSystem())
    files = write_archive(directory, rows, block_rows)
    y, fold_of = labels_and_folds(rows, block_rows, label_means())
    train, valid = fold_of != 0, fold_of == 0

    def rows_of(
        mask: np.ndarray, part: slice = slice(None)
    ) -> tuple[list[str], list[np.ndarray], np.ndarray]:
        chosen = range(len(files))[part]
        positions = [np.flatnonzero(mask[i * block_rows : (i + 1) * block_rows]) for i in chosen]
        labels = np.concatenate(
            [y[i * block_rows : (i + 1) * block_rows][p] for i, p in zip(chosen, positions, strict=True)]
        )
        return [files[i] for i in chosen], positions, labels

    params = {"n_estimators": rounds}
    every = max(1, min(REPORT_EVERY, rounds // 5))
    started = time.perf_counter()
    if engine == "local":
        files_train, positions, y_train = rows_of(train)
        reader = ParquetRows(files_train, positions, filesystem)
        callbacks = [progress_every(every, "local")]
        model = fit_streamed(reader, y_train, LABELS, params=params, callbacks=callbacks)
    else:
        from training.fit.dask_engine import LOCAL_WORKERS, dask_client, fit_on_workers

        with dask_client(memory_limit=DASK_WORKER_MEMORY) as client:
            shares = [rows_of(train, slice(w, None, LOCAL_WORKERS)) for w in range(LOCAL_WORKERS)]
            model = fit_on_workers(client, shares, filesystem, LABELS, params=params, report_every=every)
    fit_s = time.perf_counter() - started
    files_valid, positions, y_valid = rows_of(valid)
    probabilities = predict_streamed(model, ParquetRows(files_valid, positions, filesystem))
    metrics = compute_metrics(y_valid, probabilities, LABELS)
    return {"engine": engine, "rows": rows, "reader": "parquet, streamed", "rounds": rounds, "fit_s": round(fit_s, 2),
            "fold0": {k: round(float(v), 4) for k, v in metrics.items() if isinstance(v, float)},
            "train_rows": int(train.sum()), "valid_rows": int(valid.sum())}  # fmt: skip


def measure(engine: str, rows: int, block_rows: int, directory: Path, rounds: int = TREES) -> dict[str, Any]:
    """``run_engine`` in a child process; its tree's peak RSS sampled from here."""
    import psutil

    load = os.getloadavg()
    command = [sys.executable, "-m", "bench.archive_training", "--child", engine, "--rows", str(rows),
               "--block-rows", str(block_rows), "--archive-dir", str(directory), "--rounds", str(rounds)]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(child.pid)
        while not done.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{engine} engine failed (exit {child.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "peak_rss_gb": round(peak / 1e9, 2), "load_average_1m_at_start": round(load[0], 2),
            "load_average_1_5_15_at_end": [round(v, 2) for v in os.getloadavg()]}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--block-rows", type=int, default=10_000)
    parser.add_argument("--engines", default="local,dask")
    parser.add_argument(
        "--archive-dir",
        type=Path,
        default=None,
        help=f"where the generated archive is kept (default {ARCHIVE_DIR}/rows-N)",
    )
    parser.add_argument(
        "--rounds", type=int, default=TREES,
        help="boosting rounds (DEFAULT_PARAMS' 200 trees per class): fewer to measure memory and time per round "
        "when the machine is too busy for the whole fit",
    )  # fmt: skip
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows % args.block_rows:
        parser.error("--rows must be a multiple of --block-rows")
    directory = args.archive_dir or ARCHIVE_DIR / f"rows-{args.rows}-block-{args.block_rows}"
    if args.child:
        print(json.dumps(run_engine(args.child, args.rows, args.block_rows, directory, args.rounds)))
        return
    started, reused = time.perf_counter(), (directory / "_complete").is_file()
    write_archive(directory, args.rows, args.block_rows)
    written = {"archive": str(directory), "archive_bytes": sum(f.stat().st_size for f in directory.rglob("*.parquet")),
               "archive_write_s": None if reused else round(time.perf_counter() - started, 2)}  # fmt: skip
    print(json.dumps(written))
    figures = [
        {**measure(engine, args.rows, args.block_rows, directory, args.rounds), **written}
        for engine in args.engines.split(",")
    ]
    for figure in figures:
        print(json.dumps(figure))
    # Every run is kept: on a shared machine one run's times say little without the others.
    stored = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    runs = stored.get(str(args.rows), {}).get("runs", [])
    stored[str(args.rows)] = {"cpus": os.cpu_count(), "runs": [*runs, figures]}
    RESULTS.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
