"""The LightGBM head trained on a Dask cluster (``camsort train --features ... --engine dask``).

``lightgbm.dask`` trains one model across the cluster's workers (LightGBM's data-parallel tree
learner: each worker bins and histograms its own rows, the histograms are reduced over
sockets). Here it is a ``LocalCluster`` of worker processes on 127.0.0.1; on AWS, any Dask
scheduler address (``--scheduler tcp://host:8786``: ECS/Fargate, EMR, Coiled, dask-cloudprovider).

What stays the same as the local engine: the folds (``training.fit.folds.grouped_folds`` depends
only on labels, near-duplicate groups, folds and seed, never on the engine), the parameters
(``DEFAULT_PARAMS``), the OOF metrics and thresholds (``cross_validate`` with ``fit=``), and the
exported head (the fitted booster, brought back with ``to_local()``, snapped to float32
thresholds and converted as any LightGBM head). What differs: distributed LightGBM bins each
worker's rows and merges histograms, so its trees are not bit-identical to a single-process fit;
the figures are reported side by side (bench/archive_training.py, docs/archive-data.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from training.fit.lightgbm import resolve_params, snap_thresholds_to_float32

LOCAL_WORKERS = 2


@contextmanager
def dask_client(
    scheduler: str | None = None, *, workers: int = LOCAL_WORKERS, memory_limit: str = "4GiB"
) -> Iterator[Any]:
    """A client of ``scheduler``, or of a LocalCluster (worker processes, 127.0.0.1 only, no dashboard)."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=memory_limit,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


class DaskHead:
    """``fit(features, y) -> LGBMClassifier``, trained by ``lightgbm.dask`` on the client's cluster."""

    def __init__(self, client: Any, *, params: dict[str, Any] | None = None, seed: int = 0):
        self.client = client
        # n_jobs is per process on one machine; on a cluster each worker uses its own threads.
        self.params = {k: v for k, v in resolve_params(params, seed).items() if k != "n_jobs"}

    def fit(self, features: Any, y: Any):
        from lightgbm import DaskLGBMClassifier

        workers = max(1, len(self.client.scheduler_info()["workers"]))
        if isinstance(features, np.ndarray):
            features, y = self._blocks(features, np.asarray(y, dtype=np.int64), workers)
        model = DaskLGBMClassifier(client=self.client, **self.params)
        model.fit(features, y)
        return model.to_local()

    def _blocks(self, features: np.ndarray, y: np.ndarray, workers: int):
        """One block per worker, each dealt a stratified share of the rows.

        Every worker must hold rows of every label: each trains LightGBM's sklearn wrapper on
        its own rows, which takes its classes from them. Dealing each label's rows round-robin
        gives every block every label that has at least ``workers`` rows. Row order does not
        change a LightGBM fit without bagging.
        """
        import dask.array as da

        order = np.concatenate([np.flatnonzero(y == label) for label in np.unique(y)])
        order = np.concatenate([order[w::workers] for w in range(workers)])
        rows = math.ceil(len(order) / workers)
        x_blocks = da.from_array(np.ascontiguousarray(features[order], dtype=np.float32), chunks=(rows, -1))
        y_blocks = da.from_array(y[order], chunks=rows)
        return self.client.persist([x_blocks, y_blocks])

    def fit_final(self, features: Any, y: Any):
        """The shipped head: as ``training.fit.lightgbm.fit_final``, on the cluster."""
        return snap_thresholds_to_float32(self.fit(features, y))


def train_head_on_dask(
    features: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    labels: list[str],
    *,
    folds: int,
    seed: int,
    params: dict[str, Any] | None = None,
    target_precision: float,
    scheduler: str | None = None,
    progress: bool = True,
):
    """(CV result, shipped LightGBM head): ``cross_validate`` on the same grouped folds as the
    local engine, each fold's head and the final head trained by ``lightgbm.dask``."""
    from training.fit.crossval import cross_validate

    with dask_client(scheduler) as client:
        head = DaskHead(client, params=params, seed=seed)
        cv = cross_validate(
            features,
            y,
            groups,
            labels,
            folds=folds,
            seed=seed,
            params=params,
            target_precision=target_precision,
            progress=progress,
            fit=head.fit,
        )
        cv.extra["engine"] = f"dask ({scheduler or f'LocalCluster, {LOCAL_WORKERS} worker processes'})"
        return cv, head.fit_final(features, y)
