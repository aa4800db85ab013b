"""Line totals of an lcov tracefile (the `coverage/lcov.info` that coverage.py writes and Codecov reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def lcov_totals(path: str | Path) -> dict[str, Any]:
    """`{"files", "total_lines", "covered_lines", "coverage_percent"}` summed over the tracefile's records.

    Uses each record's LF/LH summary lines; a record without them counts its DA lines.
    """
    files = total = covered = 0
    lf = lh = None
    da_total = da_hit = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("SF:"):
                files += 1
                lf = lh = None
                da_total = da_hit = 0
            elif line.startswith("DA:"):
                fields = line[3:].split(",")
                da_total += 1
                if len(fields) >= 2 and fields[1].strip() not in ("", "0"):
                    da_hit += 1
            elif line.startswith("LF:"):
                lf = int(line[3:] or 0)
            elif line.startswith("LH:"):
                lh = int(line[3:] or 0)
            elif line == "end_of_record":
                total += lf if lf is not None else da_total
                covered += lh if lh is not None else da_hit
    percent = round(100.0 * covered / total, 2) if total else 0.0
    return {"files": files, "total_lines": total, "covered_lines": covered, "coverage_percent": percent}
