"""Benchmark `notify usr-events watch`: dry-run throughput and memory vs log size, and --follow latency.

Prints ONE JSON line of figures. Usage: uv run python bench/notify_watch.py [--lines 1000000] [--latency-events 100]
Targets: dry-run > 50,000 events/s with peak RSS flat in the log's size; follow p50 < 0.5 s at the default poll interval.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from dnadesign.core.events import Actor, append_event, make_event
from dnadesign.notify.profile import Profile, WebhookRef, save_profile

SEED_ACTIONS = "densegen_health,densegen_flush_failed,materialize"


def make_log(path: Path, n: int) -> None:
    """A realistic mixed log: USR appends, DenseGen progress, some materializes (written in bulk for speed)."""
    actor = Actor.current("densegen", run_id="bench-run")
    templates = [
        make_event("append", "densegen/bench", actor, args={"rows": 100}, metrics={"rows": 100}, fingerprint={"rows": 1}, job={}),
        make_event("densegen_health", "densegen/bench", actor, args={"status": "running"},
                   metrics={"generated": 0, "quota": n, "percent": 0.0}, job={}),
        make_event("materialize", "densegen/bench", Actor.current("usr", run_id="bench-run"), fingerprint={"rows": 5}, job={}),
    ]
    for t in templates:
        t.pop("job", None)
    with open(path, "wb") as fh:
        buf = []
        for i in range(n):
            r = i % 10
            t = templates[0] if r < 6 else templates[1] if r < 9 else templates[2]
            ev = dict(t, event_id=f"{i:032x}")
            if t is templates[1]:
                ev["metrics"] = {"generated": i, "quota": n, "percent": 100.0 * i / n}
            buf.append(json.dumps(ev, separators=(",", ":")))
            if len(buf) >= 10000:
                fh.write(("\n".join(buf) + "\n").encode())
                buf = []
        if buf:
            fh.write(("\n".join(buf) + "\n").encode())


def run_dry(events: Path, cursor: Path, extra: list[str]) -> dict:
    """Run the real CLI as a child process; return wall time and that child's peak RSS."""
    cmd = [sys.executable, "-m", "dnadesign.notify.cli", "usr-events", "watch", "--events", str(events),
           "--cursor", str(cursor), "--provider", "slack", "--dry-run", "--from-start", *extra]
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        p = subprocess.Popen(cmd, stdout=devnull, stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        err = p.stderr.read().decode() if p.stderr else ""
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"watch failed: {err}")
    return {"seconds": round(wall, 3), "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 3), "peak_rss_mb": round(ru.ru_maxrss / 1024, 1)}


class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    arrivals: dict[str, float] = {}

    def log_message(self, *a):  # noqa: D401
        pass

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Hook.arrivals[self.headers.get("Idempotency-Key")] = time.time()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def follow_latency(tmp: Path, n: int) -> dict:
    """Append `n` events at random gaps while a --follow watcher runs; measure append -> webhook arrival."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    events = tmp / "lat" / ".events.log"
    events.parent.mkdir(parents=True)
    events.touch()
    prof = Profile(provider="generic", events=str(events), cursor=str(tmp / "lat" / "cursor"), spool_dir=str(tmp / "lat" / "spool"),
                   webhook=WebhookRef(source="env", ref="BENCH_HOOK"), allow_insecure_localhost=True)
    save_profile(tmp / "lat" / "profile.json", prof)
    env = {**os.environ, "BENCH_HOOK": f"http://127.0.0.1:{srv.server_address[1]}/hook"}
    w = subprocess.Popen([sys.executable, "-m", "dnadesign.notify.cli", "usr-events", "watch", "--profile",
                          str(tmp / "lat" / "profile.json"), "--follow"], env=env, stderr=subprocess.DEVNULL)
    time.sleep(1.5)  # let it start
    actor = Actor.current("usr", run_id="bench")
    appended: dict[str, float] = {}
    rng = random.Random(1)
    for _ in range(n):
        ev = make_event("materialize", "densegen/bench", actor, job={})
        ev.pop("job", None)
        appended[ev["event_id"]] = time.time()
        append_event(events, ev)
        time.sleep(rng.uniform(0.02, 0.2))
    deadline = time.time() + 10
    while time.time() < deadline and len(_Hook.arrivals) < n:
        time.sleep(0.05)
    w.terminate()
    w.wait(10)
    srv.shutdown()
    lat = sorted(_Hook.arrivals[k] - t for k, t in appended.items() if k in _Hook.arrivals)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {"follow_events": n, "follow_delivered": len(lat), "follow_p50_s": round(statistics.median(lat), 4),
            "follow_p99_s": round(q[98], 4), "follow_max_s": round(lat[-1], 4), "poll_interval_s": prof.poll_interval}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=100_000, help="smaller log for the memory-flatness comparison")
    ap.add_argument("--latency-events", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        big, small = tmp / "big.log", tmp / "small.log"
        make_log(big, args.lines)
        make_log(small, args.small)
        seed = ["--only-tools", "densegen", "--only-actions", SEED_ACTIONS]
        r_small = run_dry(small, tmp / "c1", seed)
        r_big = run_dry(big, tmp / "c2", seed)
        r_all = run_dry(big, tmp / "c3", [])  # no filters: every line parsed, throttled or formatted and printed
        r_all_small = run_dry(small, tmp / "c4", [])
        lat = follow_latency(tmp, args.latency_events)
        figures = {
            "bench": "notify_watch",
            "lines": args.lines,
            "log_mb": round(big.stat().st_size / 1e6, 1),
            "dry_run_seed_filters_events_per_s": round(args.lines / r_big["seconds"]),
            "dry_run_no_filters_events_per_s": round(args.lines / r_all["seconds"]),
            "dry_run_seed_filters_events_per_cpu_s": round(args.lines / r_big["cpu_seconds"]),
            "dry_run_no_filters_events_per_cpu_s": round(args.lines / r_all["cpu_seconds"]),
            "dry_run_seed_seconds": r_big["seconds"],
            "dry_run_no_filters_seconds": r_all["seconds"],
            "peak_rss_mb_small_log": r_small["peak_rss_mb"],
            "small_log_lines": args.small,
            "peak_rss_mb_big_log": r_big["peak_rss_mb"],
            "peak_rss_mb_small_log_no_filters": r_all_small["peak_rss_mb"],
            "peak_rss_mb_big_log_no_filters": r_all["peak_rss_mb"],
            **lat,
            "load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
            "note": "times include process start-up (~0.8 s); events/s = lines / wall seconds",
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
