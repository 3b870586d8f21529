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

Two ways in: ``DaskHead`` takes rows the client holds (the training pipeline's CV) and deals them
to the workers for ``lightgbm.dask``; ``fit_on_workers`` has each worker read its own Parquet
files, so no process holds the rows as a float matrix (the 1M-row bench). Either way LightGBM
is given ``machines`` explicitly: each worker's own address (127.0.0.1 on a LocalCluster) and a
port probed there. LightGBM's listener itself binds every interface (its socket code binds
INADDR_ANY) until its peers have connected (tests/functional/test_streamed_head.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from training.fit.lightgbm import resolve_params, snap_thresholds_to_float32

LOCAL_WORKERS = 2
NETWORK_TIMEOUT_MINUTES = 10  # LightGBM's wait for its peers' sockets (a worker still reading)


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


def _free_port(dask_worker: Any) -> int:
    """A free TCP port on this worker's own address (127.0.0.1 on a LocalCluster), for LightGBM."""
    import socket
    from urllib.parse import urlparse

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((urlparse(dask_worker.address).hostname, 0))
        return int(probe.getsockname()[1])


def lightgbm_machines(client: Any, workers: list[str]) -> str:
    """LightGBM's ``machines`` for ``workers``: each worker's own host and a port free there.

    Given explicitly, lightgbm.dask neither probes ports on every interface (its default binds
    ``("", 0)``) nor guesses hosts: each worker's LightGBM is told the address Dask reaches it by.
    """
    return _machines_text(workers, client.run(_free_port, workers=workers))


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
        from distributed import futures_of, wait

        features, y = self.client.persist([features, y])  # a no-op for blocks already persisted
        wait([features, y])
        # lightgbm.dask trains on the workers that hold the blocks: ``machines`` names exactly those.
        holders = sorted({w for held in self.client.who_has(futures_of(features)).values() for w in held})
        machines = lightgbm_machines(self.client, holders)
        model = DaskLGBMClassifier(
            client=self.client, machines=machines, time_out=NETWORK_TIMEOUT_MINUTES, **self.params
        )
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


def fit_on_workers(
    client: Any,
    shares: list[tuple[list[str], list[np.ndarray], np.ndarray]],
    filesystem: Any,
    n_classes: int,
    *,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    report_every: int | None = None,
):
    """The head (a ``lightgbm.Booster``) trained across the cluster from Parquet the workers read.

    ``shares[i]`` = (files, the rows to take of each file, their labels in that order) for the
    i-th worker: it opens those files itself (``filesystem``: S3 or local) and streams them into
    LightGBM (``training.fit.streamed.ParquetRows``), so neither the client nor a worker ever
    holds a float matrix of its rows. LightGBM's data-parallel learner then reduces histograms
    between the workers over the sockets of ``lightgbm_machines``. lightgbm.dask is not used
    here: it concatenates each worker's parts into one array and copies it to float32 before
    LightGBM bins it (the rows three times over per worker, besides LightGBM's binned copy).
    """
    from training.fit.streamed import native_params, rounds

    workers = sorted(client.scheduler_info()["workers"])
    if len(shares) > len(workers):
        raise ValueError(f"{len(shares)} shares of rows for {len(workers)} workers")
    workers = workers[: len(shares)]
    ports = client.run(_free_port, workers=workers)
    machines = _machines_text(workers, ports)
    native = native_params(params, seed, n_classes)
    futures = [
        client.submit(
            _fit_share,
            files,
            positions,
            y,
            filesystem,
            native,
            rounds(params, seed),
            machines,
            ports[worker],
            report_every,
            workers=[worker],
            allow_other_workers=False,
            pure=False,
        )  # fmt: skip
        for worker, (files, positions, y) in zip(workers, shares, strict=True)
    ]
    import lightgbm

    return lightgbm.Booster(model_str=client.gather(futures)[0])


def _machines_text(workers: list[str], ports: dict[str, int]) -> str:
    from urllib.parse import urlparse

    return ",".join(f"{urlparse(w).hostname}:{ports[w]}" for w in workers)


def _fit_share(
    files: list[str],
    positions: list[np.ndarray],
    y: np.ndarray,
    filesystem: Any,
    native: dict[str, Any],
    num_rounds: int,
    machines: str,
    port: int,
    report_every: int | None = None,
) -> str:
    """On one worker: its rows streamed into LightGBM's data-parallel learner; the model as text."""
    import lightgbm

    from training.fit.streamed import ParquetRows, progress_every

    network = {
        "tree_learner": "data", "machines": machines, "num_machines": machines.count(",") + 1,
        "local_listen_port": port, "pre_partition": True, "time_out": NETWORK_TIMEOUT_MINUTES,
    }  # fmt: skip
    params = {**native, **network}
    rows = ParquetRows(files, positions, filesystem)
    dataset = lightgbm.Dataset(rows, label=y, params=params, free_raw_data=True)
    callbacks = [progress_every(report_every, f"worker :{port}")] if report_every else None
    booster = lightgbm.train(params, dataset, num_boost_round=num_rounds, callbacks=callbacks)
    try:
        return booster.model_to_string()
    finally:
        booster.free_network()
