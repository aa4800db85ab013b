"""Run dense-arrays (PyPI, CBC backend, ``solutions()``) on benchmark instances.

Runs under Python >= 3.12 in its own environment, as a subprocess of
``solver_vs_dense_arrays.py``:

    uv run --no-project --python 3.12 --with dense-arrays python bench/_dense_arrays_runner.py < instances.json

Input (stdin): JSON list of instances ``{name, library, length, promoter, time_limit_s,
n_solutions, run_budget_s, method}``; ``method`` is ``solutions`` (optimal enumeration: each
solve proven optimal, the exact solution forbidden after it) or ``solutions_diverse``
(dense-arrays' diverse mode: the same, with a bonus of at most 0.5 in total for below-mean-usage
library entries, so it never trades away a site); with ``promoter`` true the last two library entries are the -35 and
-10 elements, constrained with a 16-18 bp spacer. Output (stdout): one JSON line per instance.
Outputs shorter than L are padded with seeded random bases to L and re-checked (``padded``,
``checked``); the benchmark counts only checked ones and reports the padded ones apart.
"""

from __future__ import annotations

import json
import random
import sys
import time

_COMP = str.maketrans("ACGT", "TGCA")


def _revcomp(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


def pad_and_check(seq: str, length: int, placed: list[tuple[int, int]], lib: list[str], rng: random.Random):
    """(sequence padded with random bases to ``length``, True when every claimed site is still
    there). dense-arrays returns sequences shorter than L when its sites do not fill it; a user
    would pad them, so they are padded and re-checked rather than counted as they are."""
    padded = seq + "".join(rng.choice("ACGT") for _ in range(max(0, length - len(seq))))
    n = len(lib)
    ok = len(padded) == length
    for offset, index in placed:
        site = lib[index % n] if index < n else _revcomp(lib[index % n])
        if padded[offset : offset + len(site)] != site:
            ok = False
    return padded, ok


def run(inst: dict) -> dict:
    from dense_arrays import Optimizer
    from dense_arrays.solver import SolverControls

    lib = inst["library"]
    n_lib = len(lib) - (2 if inst["promoter"] else 0)
    t0, c0 = time.perf_counter(), time.process_time()
    opt = Optimizer(lib, inst["length"], strands="double")
    if inst["promoter"]:
        opt.add_promoter_constraints(upstream=lib[-2], downstream=lib[-1], spacer_length=(16, 18))
    sols = []
    rng = random.Random(0)
    stop = "requested_count_reached"
    t_last = time.perf_counter()
    try:
        method = getattr(opt, inst.get("method", "solutions"))
        for sol in method("CBC", controls=SolverControls(time_limit_seconds=inst["time_limit_s"])):
            now = time.perf_counter()
            placed = list(sol.offset_indices_in_order())
            used = sorted({i % len(lib) for _, i in placed})
            lib_used = [i for i in used if i < n_lib]
            padded, ok = pad_and_check(sol.sequence, inst["length"], placed, lib, rng)
            sols.append({"sequence": padded, "raw_length": len(sol.sequence), "padded": len(sol.sequence) < inst["length"],
                         "checked": ok, "sites": len(lib_used), "site_set": lib_used, "solve_s": now - t_last})
            t_last = now
            if len(sols) >= inst["n_solutions"]:
                break
            if now - t0 > inst["run_budget_s"]:
                stop = "run_budget_exhausted"
                break
        else:
            stop = "exhausted"
    except Exception as exc:  # noqa: BLE001 - dense-arrays ends its generator by raising on an unproven solve
        stop = f"{type(exc).__name__}: {str(exc)[:160]}"
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"name": inst["name"], "engine": "dense-arrays", "method": inst.get("method", "solutions"), "wall_s": wall, "cpu_s": cpu,
            "stop": stop, "solutions": sols, "proven": True}


def main() -> None:
    for inst in json.load(sys.stdin):
        print(json.dumps(run(inst)), flush=True)


if __name__ == "__main__":
    main()
