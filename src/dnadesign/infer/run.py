"""`infer run`: score a dataset's sequences with a preset and write the scores back as USR overlays.

Write-back protocol (resumable, nothing lost or duplicated):
1. Check everything that can fail before touching the dataset: the dataset, the field, the preset's
   inputs and the machine (Evo2's package, checkpoint, device), recorded column types.
2. Take the run lock for (dataset, model), so two runs cannot score the same rows.
3. Select the visible rows that still lack the preset's `done` column (all rows with `--overwrite`),
   streaming them to a temporary Parquet file.
4. Per batch: score, then `Dataset.write_overlay` commits the batch as one immutable overlay part
   (its `attach` event names the batch), then an `infer_health` event reports progress.
   A kill between batches or inside one loses at most the uncommitted batch; a rerun selects
   exactly the rows no committed batch covers.
5. A final `infer_health` event: `completed`, or `failed` with the reason.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..core import events as ev
from ..core.errors import ConflictError, DnadesignError, InputError, NotFoundError
from ..core.locks import FileLock
from ..core.secrets import scrub_urls
from ..usr.layout import resolve_root
from ..usr.store import Dataset
from .presets import Preset, PresetOptions, Scorer
from .progress import ScoreProgress

HEALTH_ACTION = "infer_health"
NAMESPACE = "infer"  # every column is infer__<model>__<output> in the overlay namespace `infer`
LOCK_DIR = ".infer-locks"


@dataclass(frozen=True)
class RunRequest:
    root: Path | None
    dataset: str
    preset: Preset
    options: PresetOptions
    field: str = "sequence"
    write_back: bool = False
    overwrite: bool = False
    batch_size: int | None = None


@dataclass
class RunResult:
    dataset: str
    preset: str
    namespace: str
    prefix: str
    columns: list[str]
    done_column: str = ""
    visible_rows: int = 0
    to_score: int = 0
    skipped: int = 0
    scored: int = 0
    batches: int = 0
    committed: bool = False
    stopped: str | None = None
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Stopped(DnadesignError):
    """The run was asked to stop (SIGTERM) between batches; committed batches stay."""


def prefix_for(model: str) -> str:
    """The column prefix of a model: `infer__<model>` (columns are `<prefix>__<output>`)."""
    return f"{NAMESPACE}__{model}"


def _open(root: Path | None, dataset_id: str, actor: ev.Actor) -> Dataset:
    try:
        return Dataset.open(root, dataset_id, actor=actor)
    except NotFoundError:
        raise NotFoundError(f"dataset {dataset_id} does not exist under {resolve_root(root)}",
                            hint=f"pull it first (`usr pull {dataset_id} REMOTE -y`), or pass --root / set DNADESIGN_USR_ROOT") from None


def _field_namespaces(ds: Dataset, field_name: str) -> list[str]:
    """The overlay namespace a derived field lives in (longest match), if any."""
    owners = [ns for ns in ds.manifest().namespaces() if field_name.startswith(f"{ns}__")]
    return [max(owners, key=len)] if owners else []


def check_field(ds: Dataset, field_name: str) -> list[str]:
    """Fail (one line) unless `field_name` is a string column of the dataset; returns namespaces to join."""
    namespaces = _field_namespaces(ds, field_name)
    schema = ds.scan(namespaces=namespaces).collect_schema()
    if field_name not in schema:
        strings = [c for c, t in schema.items() if t == pl.String]
        raise InputError(f"dataset {ds.id} has no column {field_name!r}",
                         hint=f"pass --field with one of its text columns: {', '.join(strings[:8])}")
    if schema[field_name] != pl.String:
        raise InputError(f"column {field_name!r} of {ds.id} holds {schema[field_name]}, not sequences",
                         hint="pass --field sequence (or another text column of DNA sequences)")
    bio = set(ds.manifest().bio_types)
    if field_name == "sequence" and bio and not bio <= {"dna", "rna"}:
        raise InputError(f"dataset {ds.id} holds {', '.join(sorted(bio - {'dna', 'rna'}))} records; infer presets score DNA",
                         hint="use a DNA dataset")
    return namespaces


def check_types(ds: Dataset, prefix: str, scorer: Scorer) -> list[str]:
    """Column names of the preset; a column recorded earlier with another type is a conflict."""
    recorded = ds.manifest().columns
    cols = []
    for name, typ in scorer.outputs:
        col = f"{prefix}__{name}"
        if col in recorded and recorded[col] != str(typ):
            raise ConflictError(f"column {col} of {ds.id} was recorded as {recorded[col]}, but this preset writes {typ}",
                                hint="write under another model name with --name")
        cols.append(col)
    return cols


def run_lock(ds: Dataset, prefix: str) -> FileLock:
    """One writer per (dataset, model): a lock file under the USR root, outside the synced dataset."""
    key = hashlib.sha256(f"{ds.id}|{prefix}".encode()).hexdigest()[:20]
    path = ds.paths.root / LOCK_DIR / f"{key}.lock"
    return FileLock(path, timeout=0, what=f"infer run lock for {prefix} in {ds.id}")


def _select(ds: Dataset, field_name: str, namespaces: list[str], done_col: str | None, dest: Path) -> int:
    """Stream (id, field) of the rows to score into `dest`; returns their number."""
    lf = ds.scan(namespaces=namespaces)
    if done_col is not None:
        lf = lf.filter(pl.col(done_col).is_null())
    lf.select([pl.col("id"), pl.col(field_name).alias("__value")]).sink_parquet(dest, compression="zstd")
    return pq.ParquetFile(dest).metadata.num_rows


def _batch_table(ids: pa.Array, scores: dict[str, pa.Array], scorer: Scorer, prefix: str) -> pa.Table:
    arrays = [ids]
    names = ["id"]
    for name, typ in scorer.outputs:
        arr = scores[name]
        if arr.type != typ:
            arr = arr.cast(typ)
        arrays.append(arr)
        names.append(f"{prefix}__{name}")
    return pa.table(arrays, names=names)


def execute(req: RunRequest, *, stop: threading.Event | None = None, progress: bool | None = None,
            sink: Callable[[pa.Table], None] | None = None) -> RunResult:
    """Run a preset over a dataset (see the module docstring). `sink` receives each scored batch.

    Without `write_back`, every visible row is scored and handed to `sink` only; the dataset is not
    changed and no event is written.
    """
    t0, c0 = time.monotonic(), time.process_time()
    actor = ev.Actor.current("infer")
    ds = _open(req.root, req.dataset, actor)
    namespaces = check_field(ds, req.field)
    model = req.preset.model_name(req.options)
    prefix = prefix_for(model)
    scorer = req.preset.build(req.options)  # preset inputs, training, model load: may fail, nothing written yet
    columns = check_types(ds, prefix, scorer)
    result = RunResult(ds.id, req.preset.name, NAMESPACE, prefix, columns, f"{prefix}__{scorer.done_output}",
                       params=scorer.params())
    batch_size = max(1, req.batch_size or req.preset.batch_size)
    written = [*namespaces, NAMESPACE] if NAMESPACE in ds.manifest().overlays else namespaces
    schema_names = ds.scan(namespaces=written).collect_schema().names()  # materialized columns count too
    incremental = req.write_back and not req.overwrite and all(c in schema_names for c in columns)
    done_col = result.done_column if incremental else None
    join = written if incremental else namespaces
    lock = run_lock(ds, prefix) if req.write_back else None
    if lock is not None:
        lock.acquire()
    try:
        with tempfile.TemporaryDirectory(prefix="infer-") as tmp:
            todo_path = Path(tmp) / "todo.parquet"
            result.to_score = _select(ds, req.field, join, done_col, todo_path)
            result.visible_rows = ds.scan(namespaces=[]).select(pl.len()).collect().item()
            result.skipped = result.visible_rows - result.to_score
            if result.to_score == 0:
                return _finish(result, t0, c0)
            _score_batches(ds, req, scorer, result, todo_path, batch_size, stop, progress, sink)
    finally:
        if lock is not None:
            lock.release()
    if req.write_back and result.scored:
        ds.add_note(f"infer {req.preset.name}: {result.scored} row(s) scored into {prefix}__* "
                    f"({result.batches} batch(es), run {actor.run_id})")
    return _finish(result, t0, c0)


def _finish(result: RunResult, t0: float, c0: float) -> RunResult:
    result.wall_seconds = round(time.monotonic() - t0, 3)
    result.cpu_seconds = round(time.process_time() - c0, 3)
    return result


def _score_batches(ds: Dataset, req: RunRequest, scorer: Scorer, result: RunResult, todo_path: Path, batch_size: int,
                   stop: threading.Event | None, progress: bool | None, sink: Callable[[pa.Table], None] | None) -> None:
    total = result.to_score
    n_batches = -(-total // batch_size)
    common = {"preset": req.preset.name, "namespace": result.namespace, "prefix": result.prefix, "field": req.field}
    if req.write_back:
        ds.log_event(HEALTH_ACTION, args={**common, "status": "started", "overwrite": req.overwrite,
                                          "batch_size": batch_size, "params": result.params},
                     metrics={"total": total, "skipped": result.skipped, "rows": result.visible_rows,
                              "batches": n_batches, "scored": 0, "percent": 0.0})
    started = time.monotonic()
    try:
        with ScoreProgress(f"{req.preset.name} {ds.id}", total, progress) as bar:
            for batch in pq.ParquetFile(todo_path).iter_batches(batch_size=batch_size, columns=["id", "__value"]):
                if stop is not None and stop.is_set():
                    raise Stopped(f"stopped by a signal after {result.scored} of {total} row(s)",
                                  hint="rerun the same command to score the rest")
                table = _batch_table(batch.column(0), scorer.score(batch.column(1)), scorer, result.prefix)
                result.batches += 1
                if req.write_back:
                    ds.write_overlay(result.namespace, table, action="attach",
                                     event_args={"tool": "infer", **common, "batch": result.batches, "batches": n_batches})
                    result.committed = True
                if sink is not None:
                    sink(table)
                result.scored += table.num_rows
                bar.advance(table.num_rows)
                if req.write_back:
                    elapsed = max(time.monotonic() - started, 1e-9)
                    ds.log_event(HEALTH_ACTION, args={**common, "status": "running"},
                                 metrics={"batch": result.batches, "batches": n_batches, "rows": table.num_rows,
                                          "scored": result.scored, "total": total,
                                          "percent": round(100.0 * result.scored / total, 2),
                                          "rows_per_s": round(result.scored / elapsed, 1)})
    except BaseException as exc:  # recorded as a failed event, then re-raised
        if req.write_back:
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else (
                exc.message if isinstance(exc, DnadesignError) else f"{type(exc).__name__}: {exc}")
            result.stopped = scrub_urls(str(reason).splitlines()[0] if str(reason) else type(exc).__name__)
            ds.log_event(HEALTH_ACTION, args={**common, "status": "failed", "error": result.stopped},
                         metrics={"scored": result.scored, "total": total, "batches": result.batches,
                                  "percent": round(100.0 * result.scored / total, 2)})
        raise
    if req.write_back:
        elapsed = max(time.monotonic() - started, 1e-9)
        ds.log_event(HEALTH_ACTION, args={**common, "status": "completed"},
                     metrics={"scored": result.scored, "total": total, "skipped": result.skipped,
                              "batches": result.batches, "percent": 100.0, "seconds": round(elapsed, 3),
                              "rows_per_s": round(result.scored / elapsed, 1)})
