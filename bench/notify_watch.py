"""Benchmark notify: dry-run throughput and memory vs log size, --follow latency, --help start-up CPU, and
POSTs per message against a rate-limiting endpoint; start-up and rate limit side by side with a baseline tree.

Prints ONE JSON line of figures. Usage:
    uv run python bench/notify_watch.py [--lines 1000000] [--latency-events 100] [--baseline-ref REF]
The baseline is the notify of another commit (default: the one before the issue 11/15 work), exported
with `git archive` into a temporary directory and run with the same interpreter, in the same run.
Targets: dry-run > 50,000 events/s with peak RSS flat in the log's size; follow p50 < 0.5 s at the default
poll interval; every `--help` under 0.3 s CPU; about one POST per message against a rate limit.
CPU figures are the child processes' user+system seconds (os.wait4), not wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from dnadesign.core.events import Actor, append_event, make_event
from dnadesign.notify.profile import Profile, WebhookRef, save_profile

SEED_ACTIONS = "densegen_health,densegen_flush_failed,materialize"
BASELINE_REF = "75317c4"  # main before the notify work of issues 11 and 15
HELP_COMMANDS = [["--help"], ["usr-events", "watch", "--help"], ["send", "--help"], ["profile", "wizard", "--help"],
                 ["spool", "drain", "--help"]]
REPO = Path(__file__).resolve().parents[1]


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


def _run(cmd: list[str], env: dict | None = None, stdout=subprocess.DEVNULL) -> tuple[int, float, float, float, str]:
    """Run a child; (exit code, wall s, CPU s, peak RSS MiB, stderr)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env)
    err = p.stderr.read().decode() if p.stderr else ""
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    return os.waitstatus_to_exitcode(status), wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, err


def run_dry(events: Path, cursor: Path, extra: list[str]) -> dict:
    """Run the real CLI as a child process; return wall time, CPU time and that child's peak RSS."""
    cmd = [sys.executable, "-m", "dnadesign.notify.cli", "usr-events", "watch", "--events", str(events),
           "--cursor", str(cursor), "--provider", "slack", "--dry-run", "--from-start", *extra]
    code, wall, cpu, rss, err = _run(cmd)
    if code != 0:
        raise SystemExit(f"watch failed: {err}")
    return {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "peak_rss_mb": round(rss, 1)}


# -------------------------------------------------------------------------------- baseline tree
def export_tree(ref: str, dest: Path) -> Path | None:
    """`git archive REF src/dnadesign` into dest; returns the `src` dir, or None when the ref is unknown."""
    try:
        data = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src/dnadesign"], capture_output=True, check=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    dest.mkdir(parents=True, exist_ok=True)
    tar = dest / "tree.tar"
    tar.write_bytes(data)
    with tarfile.open(tar) as tf:
        tf.extractall(dest, filter="data")
    return dest / "src"


def _env_with(src: Path | None) -> dict:
    env = dict(os.environ)
    if src is not None:  # PYTHONPATH comes before the editable install of the working tree
        env["PYTHONPATH"] = str(src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def help_cpu(src: Path | None, repeats: int) -> dict:
    """Median CPU seconds of each `notify ... --help` (src None: this tree)."""
    out = {}
    for args in HELP_COMMANDS:
        cpus = []
        for _ in range(repeats):
            code, _, cpu, _, err = _run([sys.executable, "-m", "dnadesign.notify.cli", *args], env=_env_with(src))
            if code != 0:
                raise SystemExit(f"notify {' '.join(args)} failed: {err}")
            cpus.append(cpu)
        out[" ".join(a for a in args if a != "--help") or "notify"] = round(statistics.median(cpus), 3)
    return out


# -------------------------------------------------------------------------------- rate limit
class _Limited(BaseHTTPRequestHandler):
    """Like Slack: at most one accepted post per `gap` seconds; sooner posts get 429 with Retry-After."""

    protocol_version = "HTTP/1.1"
    gap = 1.0
    lock = threading.Lock()
    posts: ClassVar[list[int]] = []
    last_ok: ClassVar[list[float]] = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with _Limited.lock:
            now = time.monotonic()
            early = bool(_Limited.last_ok) and now - _Limited.last_ok[-1] < _Limited.gap
            if not early:
                _Limited.last_ok.append(now)
            _Limited.posts.append(429 if early else 200)
        code = 429 if early else 200
        self.send_response(code)
        if early:
            self.send_header("Retry-After", f"{_Limited.gap:g}")
        self.send_header("Content-Length", "0")
        self.end_headers()


CLIENT = r"""
import sys, time
from pathlib import Path
from dnadesign.notify.profile import DeliveryPolicy
url, n, state = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
policy = DeliveryPolicy()
try:
    from dnadesign.notify.http_transport import http_sender
    sender = http_sender(url, policy, allow_insecure_localhost=True, state_path=state)
except ImportError:  # the baseline tree
    from dnadesign.notify.delivery import Sender
    sender = Sender(url, policy, allow_insecure_localhost=True)
ok = sum(sender.deliver({"text": f"m{i}"}, f"key-{i}").ok for i in range(n))
print(ok)
"""


def rate_limit_posts(src: Path | None, n: int, gap: float, tmp: Path) -> dict:
    """POSTs needed to deliver `n` messages to a rate-limited endpoint (generic provider, default policy)."""
    _Limited.gap = gap
    _Limited.posts.clear()
    _Limited.last_ok.clear()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Limited)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", CLIENT, f"http://127.0.0.1:{srv.server_address[1]}/hook", str(n),
                            str(tmp / f"rl-{os.getpid()}-{time.time_ns()}.json")], env=_env_with(src), capture_output=True,
                           text=True, timeout=600)
        wall = time.perf_counter() - t0
    finally:
        srv.shutdown()
        srv.server_close()
    if r.returncode != 0:
        raise SystemExit(f"rate-limit client failed: {r.stderr[-500:]}")
    return {"delivered": int(r.stdout.strip() or 0), "posts": len(_Limited.posts), "refused_429": _Limited.posts.count(429),
            "seconds": round(wall, 2)}


# -------------------------------------------------------------------------------- follow latency
class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    arrivals: ClassVar[dict[str, float]] = {}

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Hook.arrivals[self.headers.get("Idempotency-Key")] = time.time()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _wait_ready(proc: subprocess.Popen, timeout: float) -> float:
    """Block until the watcher prints its readiness line on stderr; returns the seconds it took."""
    t0 = time.perf_counter()
    got = threading.Event()

    def pump():
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.rstrip().endswith(b"; ready"):
                got.set()
        got.set()

    threading.Thread(target=pump, daemon=True).start()
    if not got.wait(timeout) or proc.poll() is not None:
        raise SystemExit("the watcher did not print its readiness line")
    return time.perf_counter() - t0


def follow_latency(tmp: Path, n: int) -> dict:
    """Start a --follow watcher, wait for its readiness line, then append `n` events at random gaps and measure
    append -> webhook arrival."""
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
                          str(tmp / "lat" / "profile.json"), "--follow"], env=env, stderr=subprocess.PIPE)
    try:
        ready_s = _wait_ready(w, 120)
        actor = Actor.current("usr", run_id="bench")
        appended: dict[str, float] = {}
        rng = random.Random(1)
        for _ in range(n):
            ev = make_event("materialize", "densegen/bench", actor, job={})
            ev.pop("job", None)
            appended[ev["event_id"]] = time.time()
            append_event(events, ev)
            time.sleep(rng.uniform(0.02, 0.2))  # the workload's own gaps between events
        deadline = time.time() + 60
        while time.time() < deadline and len(_Hook.arrivals) < n:
            time.sleep(0.05)
    finally:
        w.terminate()
        w.wait(30)
        srv.shutdown()
    lat = sorted(_Hook.arrivals[k] - t for k, t in appended.items() if k in _Hook.arrivals)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {"follow_events": n, "follow_delivered": len(lat), "follow_p50_s": round(statistics.median(lat), 4),
            "follow_p99_s": round(q[98], 4), "follow_max_s": round(lat[-1], 4), "poll_interval_s": prof.poll_interval,
            "follow_ready_after_s": round(ready_s, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=100_000, help="smaller log for the memory-flatness comparison")
    ap.add_argument("--latency-events", type=int, default=100)
    ap.add_argument("--help-repeats", type=int, default=5)
    ap.add_argument("--ratelimit-messages", type=int, default=20)
    ap.add_argument("--ratelimit-gap", type=float, default=1.0, help="the endpoint accepts one post per this many seconds")
    ap.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the baseline notify ('' to skip)")
    args = ap.parse_args()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base = export_tree(args.baseline_ref, tmp / "baseline") if args.baseline_ref else None
        figures: dict = {"bench": "notify_watch", "commit": commit, "baseline_ref": args.baseline_ref if base else None}
        figures["help_cpu_s"] = help_cpu(None, args.help_repeats)
        if base is not None:
            figures["help_cpu_s_baseline"] = help_cpu(base, args.help_repeats)
        figures["ratelimit_gap_s"] = args.ratelimit_gap
        figures["ratelimit"] = rate_limit_posts(None, args.ratelimit_messages, args.ratelimit_gap, tmp)
        if base is not None:
            figures["ratelimit_baseline"] = rate_limit_posts(base, args.ratelimit_messages, args.ratelimit_gap, tmp)
        figures.update(follow_latency(tmp, args.latency_events))
        if args.lines:
            big, small = tmp / "big.log", tmp / "small.log"
            make_log(big, args.lines)
            make_log(small, args.small)
            seed = ["--only-tools", "densegen", "--only-actions", SEED_ACTIONS]
            r_small = run_dry(small, tmp / "c1", seed)
            r_big = run_dry(big, tmp / "c2", seed)
            r_all = run_dry(big, tmp / "c3", [])  # no filters: every line parsed, throttled or formatted and printed
            r_all_small = run_dry(small, tmp / "c4", [])
            figures.update({
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
            })
        figures.update({"load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
                        "note": "help and dry-run CPU are child user+system seconds; events/s = lines / wall seconds"})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
