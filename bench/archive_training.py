"""When to train the head on Dask: the local engine vs ``lightgbm.dask`` on generated feature rows.

``python -m bench.archive_training --rows 100000`` (``make bench-archive``) generates N rows x
2048 float16 features drawn from per-label distributions (3 labels, a per-label mean vector plus
unit noise; seeded, in blocks of ``--block-rows``), the grouped folds of ``training.fit.folds``
(groups of 5 rows, as near-duplicates), and for each engine, in a child process of its own:
fits the head (``DEFAULT_PARAMS``) on every fold but fold 0 and scores fold 0. The local engine
holds the whole matrix in one process; the Dask engine's workers generate their own blocks
(the same rows, bit for bit), so no process ever holds all of them.

Each figure: wall time of the fit (generation excluded, reported apart), peak resident memory
of the child's whole process tree (sampled every 0.1 s: client, scheduler, workers), the load
average when it started (2 shared cores: other engineers' work slows every figure), and the
fold-0 metrics side by side (distributed LightGBM is not bit-identical).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = 2048
LABELS = 3
GROUP_ROWS = 5
FOLDS = 5
SEED = 0
RESULTS = Path(__file__).resolve().parent / "archive_training.json"


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


def run_engine(engine: str, rows: int, block_rows: int) -> dict[str, Any]:
    """One engine's fit on folds 1..4 and score on fold 0 (in this process)."""
    from training.fit.lightgbm import fit_final
    from training.fit.metrics import compute_metrics

    means = label_means()
    started = time.perf_counter()
    y, fold_of = labels_and_folds(rows, block_rows, means)
    train, valid = fold_of != 0, fold_of == 0
    if engine == "local":
        x = np.concatenate([block(i, block_rows, means)[0] for i in range(rows // block_rows)])
        generated = time.perf_counter() - started
        started = time.perf_counter()
        model = fit_final(x[train].astype(np.float32), y[train])
        probabilities = model.predict_proba(x[valid].astype(np.float32))
    else:
        import dask.array as da
        from dask import delayed

        from training.fit.dask_engine import DaskHead, dask_client

        with dask_client() as client:
            blocks = [delayed(block)(i, block_rows, means) for i in range(rows // block_rows)]
            xs = [da.from_delayed(b[0], (block_rows, FEATURES), np.float16) for b in blocks]
            x = da.concatenate(xs).astype(np.float32)
            x_train = x[np.flatnonzero(train)]
            x_train, y_train = client.persist(
                [x_train.rechunk((block_rows, -1)), da.from_array(y[train], chunks=block_rows)]
            )
            generated = time.perf_counter() - started
            started = time.perf_counter()
            model = DaskHead(client).fit(x_train, y_train)
            probabilities = model.predict_proba(x[np.flatnonzero(valid)].compute())
    fit_s = time.perf_counter() - started
    metrics = compute_metrics(y[valid], probabilities.astype(np.float32), LABELS)
    return {"engine": engine, "rows": rows, "generate_s": round(generated, 2), "fit_s": round(fit_s, 2),
            "fold0": {k: round(float(v), 4) for k, v in metrics.items() if isinstance(v, float)},
            "train_rows": int(train.sum()), "valid_rows": int(valid.sum())}  # fmt: skip


def measure(engine: str, rows: int, block_rows: int) -> dict[str, Any]:
    """``run_engine`` in a child process; its tree's peak RSS sampled from here."""
    import psutil

    load = os.getloadavg()
    command = [sys.executable, "-m", "bench.archive_training", "--child", engine, "--rows", str(rows),
               "--block-rows", str(block_rows)]  # fmt: skip
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
    return {**result, "peak_rss_gb": round(peak / 1e9, 2), "load_average_1m_at_start": round(load[0], 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--block-rows", type=int, default=10_000)
    parser.add_argument("--engines", default="local,dask")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows % args.block_rows:
        parser.error("--rows must be a multiple of --block-rows")
    if args.child:
        print(json.dumps(run_engine(args.child, args.rows, args.block_rows)))
        return
    figures = [measure(engine, args.rows, args.block_rows) for engine in args.engines.split(",")]
    for figure in figures:
        print(json.dumps(figure))
    # Every run is kept: on a shared machine one run's times say little without the others.
    stored = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    runs = stored.get(str(args.rows), {}).get("runs", [])
    stored[str(args.rows)] = {"cpus": os.cpu_count(), "runs": [*runs, figures]}
    RESULTS.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
