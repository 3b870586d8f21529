"""The LightGBM head trained from Parquet feature rows with bounded memory (no [N, F] matrix).

``ParquetRows`` is a ``lightgbm.Sequence`` over chosen rows of Parquet files (the feature
archive ``camsort compact`` writes, or the bench's generated rows): it decodes one batch of
``batch_rows`` float16 vectors at a time and hands LightGBM float32 rows. LightGBM builds its
binned dataset from it in two passes (a sample of rows for the bin boundaries, then every row
in batches), so the resident peak is LightGBM's binned data (1 byte per feature per row, plus
its row-wise copy) and the sample, never the float32 matrix (8 GB at 1M x 2048).

``fit_streamed`` is the local engine's fit from such rows; ``training.fit.dask_engine`` runs
the same fit on each Dask worker over the files it reads itself. Both use ``native_params``:
``DEFAULT_PARAMS`` as LightGBM's native parameters, with the bin sample capped at
``STREAM_SAMPLE_ROWS``. LightGBM's sample for the bin boundaries is held as float64 columns
plus their row indices (~20 bytes per sampled value): its default 200,000 rows x 2,048
features would take 8 GB by itself, 50,000 take 2 GB. Under 50,000 rows every row is sampled,
as in the in-memory fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightgbm
import numpy as np

from training.fit.lightgbm import resolve_params

STREAM_SAMPLE_ROWS = 50_000
BATCH_ROWS = 4_096  # 16 MB of float32 at 2048 features


class ParquetRows(lightgbm.Sequence):
    """Rows ``positions[i]`` (sorted, 0-based) of each file ``files[i]``'s ``column``, in that order."""

    def __init__(
        self,
        files: list[str],
        positions: list[np.ndarray],
        filesystem: Any,
        *,
        column: str = "features",
        batch_rows: int = BATCH_ROWS,
    ):
        if len(files) != len(positions):
            raise ValueError("one positions array per file")
        self.files, self.positions = list(files), [np.asarray(p, dtype=np.int64) for p in positions]
        self.filesystem, self.column, self.batch_size = filesystem, column, batch_rows
        self._starts = np.cumsum([0, *(len(p) for p in self.positions)])
        self._cursor: _Cursor | None = None

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            if not -len(self) <= index < len(self):
                raise IndexError(index)
            row = int(index) % len(self)
            return self.rows(row, row + 1)[0].astype(np.float64)  # LightGBM's bin sample is float64
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise IndexError("ParquetRows reads contiguous slices only")
            return self.rows(start, stop)
        return np.stack([self[int(i)] for i in index])

    def rows(self, start: int, stop: int) -> np.ndarray:
        """float32 [stop - start, F]: the selected rows ``start`` to ``stop``, read file by file."""
        pieces = []
        while start < stop:
            file = int(np.searchsorted(self._starts, start, side="right")) - 1
            end = min(stop, int(self._starts[file + 1]))
            local = start - int(self._starts[file])
            pieces.append(self._read(file, self.positions[file][local : local + end - start]))
            start = end
        if not pieces:
            return np.empty((0, 0), dtype=np.float32)
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def batches(self) -> Iterator[np.ndarray]:
        """Every selected row, ``batch_size`` at a time (float32)."""
        for start in range(0, len(self), self.batch_size):
            yield self.rows(start, min(start + self.batch_size, len(self)))

    def _read(self, file: int, positions: np.ndarray) -> np.ndarray:
        out: np.ndarray | None = None
        done = 0
        while done < len(positions):
            cursor = self._at(file, int(positions[done]))
            inside = int(np.searchsorted(positions, cursor.stop, side="left")) - done
            block = cursor.vectors[positions[done : done + inside] - cursor.start]
            if out is None:
                out = np.empty((len(positions), block.shape[1]), dtype=np.float32)
            out[done : done + inside] = block
            done += inside
        assert out is not None
        return out

    def _at(self, file: int, position: int) -> _Cursor:
        """The cursor over ``files[file]`` whose current batch holds ``position`` (forward only,
        reopened when asked for an earlier row: LightGBM reads in order, twice)."""
        cursor = self._cursor
        if cursor is None or cursor.file != file or position < cursor.start:
            cursor = self._cursor = _Cursor(file, self._open(self.files[file]))
        while position >= cursor.stop:
            cursor.advance(self.files[file])
        return cursor

    def _open(self, path: str) -> Iterator[Any]:
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.filesystem.open_input_file(path)).iter_batches(
            batch_size=self.batch_size, columns=[self.column]
        )


class _Cursor:
    """One file's batches, read forward: rows [start, stop) are ``vectors`` (float16)."""

    def __init__(self, file: int, batches: Iterator[Any]):
        self.file, self.batches = file, batches
        self.start = self.stop = 0
        self.vectors = np.empty((0, 0), dtype=np.float16)

    def advance(self, path: str) -> None:
        batch = next(self.batches, None)
        if batch is None:
            raise IndexError(f"{path}: fewer rows than the positions asked for")
        column = batch.column(0)
        width = column.type.list_size
        self.vectors = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
        self.start, self.stop = self.stop, self.stop + len(self.vectors)


def native_params(params: dict[str, Any] | None, seed: int, n_classes: int) -> dict[str, Any]:
    """``resolve_params`` as ``lightgbm.train`` takes them (the sklearn names are LightGBM aliases)."""
    native = {k: v for k, v in resolve_params(params, seed).items() if k != "n_estimators"}
    native["bin_construct_sample_cnt"] = STREAM_SAMPLE_ROWS
    if n_classes > 2:
        native.update(objective="multiclass", num_class=n_classes)
    else:
        native["objective"] = "binary"
    return native


def rounds(params: dict[str, Any] | None, seed: int = 0) -> int:
    return int(resolve_params(params, seed)["n_estimators"])


def progress_every(rounds: int, name: str) -> Any:
    """A LightGBM callback printing ``name: round i/N, t s`` to stderr every ``rounds`` rounds
    (a run of an hour says how far it got)."""
    import sys
    import time

    started = time.perf_counter()

    def report(env: Any) -> None:
        done = env.iteration + 1
        if done % rounds == 0 or done == env.end_iteration:
            took = time.perf_counter() - started
            print(f"{name}: round {done}/{env.end_iteration}, {took:.0f} s", file=sys.stderr, flush=True)

    return report


def fit_streamed(
    rows: ParquetRows,
    y: np.ndarray,
    n_classes: int,
    *,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    callbacks: list[Any] | None = None,
):
    """The head (a ``lightgbm.Booster``) fitted in this process on ``rows``, labels ``y``."""
    native = native_params(params, seed, n_classes)
    dataset = lightgbm.Dataset(rows, label=np.asarray(y), params=native, free_raw_data=True)
    return lightgbm.train(native, dataset, num_boost_round=rounds(params, seed), callbacks=callbacks)


def predict_streamed(booster: Any, rows: ParquetRows) -> np.ndarray:
    """float32 [N, C] class probabilities of ``rows``, one batch at a time."""
    parts = [np.asarray(booster.predict(batch), dtype=np.float32) for batch in rows.batches()]
    probabilities = np.concatenate(parts) if parts else np.empty((0,), dtype=np.float32)
    if probabilities.ndim == 1:  # binary: p(1)
        probabilities = np.stack([1 - probabilities, probabilities], axis=1)
    return probabilities
