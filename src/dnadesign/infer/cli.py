"""`infer`: thin Typer CLI over `dnadesign.infer` (score USR sequences, write the scores back as overlays)."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..core.cli import handled, run_app
from ..core.console import info, out, print_json, table, warn
from ..core.errors import InputError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

app = typer.Typer(name="infer", help="Score a USR dataset's sequences with a model preset and write the scores back as overlays.",
                  no_args_is_help=True, add_completion=False)

ROOT_HELP = "USR root directory (default $DNADESIGN_USR_ROOT, else ~/.local/share/dnadesign/usr), as for `usr`."
DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


@app.callback()
def _root(ctx: typer.Context, root: Path | None = typer.Option(None, "--root", help=ROOT_HELP)) -> None:
    ctx.obj = {"root": root}


def _options(device: str, name: str | None = None, motifs: Path | None = None, motif_format: str | None = None,
             pvalue: float = 1e-4, train_fasta: Path | None = None, k: int = 6, checkpoint: Path | None = None,
             evo2_model: str | None = None, layer: str | None = None):
    from .presets import PresetOptions

    if not DEVICE.match(device):
        raise UsageError(f"unknown --device {device!r}", hint="use cpu, cuda or cuda:N")
    return PresetOptions(device=device, name=name, motifs=motifs, motif_format=motif_format, pvalue=pvalue,
                         train_fasta=train_fasta, k=k, checkpoint=checkpoint, evo2_model=evo2_model, layer=layer)


@app.command("run")
@handled
def run_cmd(
    ctx: typer.Context,
    preset: str = typer.Option(..., "--preset", help="MODEL/JOB, e.g. regulondb/pwm_scan (see `infer presets`)."),
    dataset: str = typer.Option(..., "--usr", help="USR dataset id (namespace/name) to score."),
    field: str = typer.Option("sequence", "--field", help="Column holding the DNA sequences."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N (the built-in presets run on CPU)."),
    write_back: bool = typer.Option(False, "--write-back", help="Store the scores in the dataset as infer__<model>__* overlay columns."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Rescore rows that already have the columns (default: skip them)."),
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Rows per committed batch (default: per preset)."),
    out_path: Path | None = typer.Option(None, "--out", help="Also write id + scores to this .parquet or .csv file."),
    name: str | None = typer.Option(None, "--name", help="Model name in the column names (default: per preset), e.g. to keep two motif sets apart."),
    motifs: Path | None = typer.Option(None, "--motifs", help="pwm/scan: motif file (MEME, JASPAR, RegulonDB PSSM or JSON)."),
    motif_format: str | None = typer.Option(None, "--motif-format", help="pwm/scan: meme | jaspar | regulondb | artifact (default: detected)."),
    pvalue: float = typer.Option(1e-4, "--pvalue", help="PWM presets: a hit is a window whose score has p <= this (per window, both strands)."),
    train_fasta: Path | None = typer.Option(None, "--train-fasta", help="markov/loglik: FASTA to train the background model on (e.g. the genome)."),
    k: int = typer.Option(6, "--k", help="markov/loglik: k-mer size (Markov order k-1)."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Evo2: local checkpoint file or directory (default $DNADESIGN_EVO2_CHECKPOINT)."),
    evo2_model: str | None = typer.Option(None, "--evo2-model", help="Evo2: evo2_7b (default), evo2_40b, evo2_7b_base, evo2_40b_base, evo2_1b_base."),
    layer: str | None = typer.Option(None, "--layer", help="evo2/extract_embedding: layer to pool (default per model)."),
    as_json: bool = JsonOpt,
) -> None:
    """Score every visible row of a dataset; with --write-back, commit one overlay batch at a time (resumable)."""
    from .presets import get_preset
    from .run import RunRequest, Stopped, execute

    spec = get_preset(preset)
    opts = _options(device, name, motifs, motif_format, pvalue, train_fasta, k, checkpoint, evo2_model, layer)
    if spec.cpu and device != "cpu":
        warn(f"{spec.name} runs on the CPU; --device {device} is ignored")
    if out_path is not None and out_path.suffix.lower() not in (".parquet", ".csv"):
        raise UsageError(f"--out {out_path} must end in .parquet or .csv")
    if overwrite and not write_back:
        raise UsageError("--overwrite only applies with --write-back")
    root = root or (ctx.find_root().obj or {}).get("root")
    request = RunRequest(root, dataset, spec, opts, field, write_back, overwrite, batch_size)
    stop = threading.Event()
    sink, close_sink, preview = _sinks(out_path, write_back)
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if threading.current_thread() is threading.main_thread() else None
    try:
        result = execute(request, stop=stop, sink=sink)
        close_sink(True)
    except Stopped as exc:
        close_sink(False)
        exc.exit_code = 128 + signal.SIGTERM
        raise
    except BaseException:
        close_sink(False)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    _report(result, as_json, write_back, out_path, preview)


def _sinks(out_path: Path | None, write_back: bool):
    """(sink, close(ok), preview rows) for the scored batches: an --out file, and a preview without write-back."""
    preview: list[pa.Table] = []
    writer: dict[str, Any] = {}

    def sink(tbl: pa.Table) -> None:
        if not write_back and sum(t.num_rows for t in preview) < 5:
            preview.append(tbl.slice(0, 5))
        if out_path is None:
            return
        if "w" not in writer:
            writer["tmp"] = out_path.with_name(f".{out_path.name}.tmp")
            if out_path.suffix.lower() == ".parquet":
                import pyarrow.parquet as pq

                writer["w"] = pq.ParquetWriter(writer["tmp"], tbl.schema, compression="zstd")
            else:
                import pyarrow as pa
                import pyarrow.csv as pacsv

                if any(pa.types.is_nested(f.type) for f in tbl.schema):
                    raise InputError("list columns cannot be written to CSV", hint="use --out FILE.parquet")
                writer["w"] = pacsv.CSVWriter(writer["tmp"], tbl.schema)
        writer["w"].write_table(tbl)

    def close(ok: bool) -> None:
        if "w" not in writer:
            return
        writer["w"].close()
        tmp = Path(writer["tmp"])
        if ok and out_path is not None:
            import os

            from ..core.atomic import fsync_dir

            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, out_path)
            fsync_dir(out_path.parent)
        else:
            tmp.unlink(missing_ok=True)

    return sink, close, preview


def _report(result, as_json: bool, write_back: bool, out_path: Path | None, preview) -> None:
    if as_json:
        print_json(result.as_dict())
        return
    if result.to_score == 0:
        what = f"already have {result.done_column}" if write_back else "are visible"
        out.print(f"Nothing to score in {result.dataset}: {result.visible_rows} row(s) {what}"
                  + ("; pass --overwrite to rescore." if write_back and result.visible_rows else "."), highlight=False)
        return
    where = f"into {result.prefix}__* ({len(result.columns)} column(s))" if write_back else "(not stored: add --write-back)"
    out.print(f"Scored {result.scored} row(s) of {result.dataset} with {result.preset} {where} in {result.batches} batch(es)"
              + (f"; {result.skipped} already scored, skipped" if result.skipped else "")
              + f"; {result.cpu_seconds:.1f} s CPU.", highlight=False)
    if out_path is not None:
        out.print(f"Wrote {result.scored} row(s) to {out_path}", highlight=False)
    if preview and not write_back:
        import pyarrow as pa

        head = pa.concat_tables(preview).slice(0, 5)
        cols = head.column_names[:7]
        rows = [[_short(head.column(c)[i].as_py()) for c in cols] for i in range(head.num_rows)]
        out.print(table(f"first rows of {result.dataset}", [c.replace(f"{result.prefix}__", "") for c in cols], rows))
        if len(head.column_names) > 7:
            info(f"({len(head.column_names) - 7} more column(s); use --out FILE.parquet or --write-back to keep them all)")


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 16 else text[:15] + "…"


@app.command("presets")
@handled
def presets_cmd(
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Evo2 checkpoint to check (default $DNADESIGN_EVO2_CHECKPOINT)."),
    evo2_model: str | None = typer.Option(None, "--evo2-model", help="Evo2 model to check (default evo2_7b)."),
    as_json: bool = JsonOpt,
) -> None:
    """List the presets, whether each can run on this machine, and why not."""
    from .presets import listing

    rows = listing(_options("cpu", checkpoint=checkpoint, evo2_model=evo2_model))
    if as_json:
        print_json(rows)
        return
    for r in rows:
        status = "runs here" if r["available"] else "cannot run here"
        out.print(f"{r['preset']}  ({r['device']}, {status})", highlight=False)
        out.print(f"    {r['summary']}", highlight=False)
        out.print(f"    needs: {r['needs']}", highlight=False)
        out.print(f"    columns: infer__<model>__ + {r['outputs']}", highlight=False)
        for reason in r["reasons"]:
            out.print(f"    why not: {reason}", highlight=False)


def main() -> None:
    run_app(app, "infer")

