"""Real processes: concurrent appenders lose nothing; SIGKILL mid-append leaves a valid dataset."""

import os
import signal
import subprocess
import sys
import textwrap

from dnadesign.usr.store import Dataset
from dnadesign.usr.validate import validate

APPENDER = textwrap.dedent("""
    import sys, itertools
    from dnadesign.usr.store import Dataset
    from dnadesign.usr.schema import make_records
    root, tag, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ds = Dataset(root, "test/c")
    alphabet = "ACGT"
    for b in range(batches):
        seqs = []
        for i in range(size):
            n = b * size + i
            seqs.append(tag + "".join(alphabet[(n >> (2 * k)) & 3] for k in range(8)))
        # every process also adds one shared sequence per batch: dedup must keep exactly one copy
        shared = "GGGGGGGGGGGG" + "".join(alphabet[(b >> (2 * k)) & 3] for k in range(4))
        ds.append(make_records(seqs + [shared]), on_conflict="ignore")
    print("done", flush=True)
""")

SLOW_COMMIT = textwrap.dedent("""
    import sys, time
    from dnadesign.usr import manifest as m
    from dnadesign.usr.store import Dataset
    from dnadesign.usr.schema import make_records
    original = m.Manifest.save
    def slow_save(self, path):
        print("parts-written", flush=True)
        time.sleep(30)  # fault injection: die between writing the part and the manifest swap
        return original(self, path)
    m.Manifest.save = slow_save
    Dataset(sys.argv[1], "test/c").append(make_records(["ACGTACGTAAAA", "ACGTACGTCCCC"]))
""")


def test_concurrent_appenders_lose_nothing(usr_root):
    Dataset.create(usr_root, "test/c")
    tags = ["AAAA", "CCCC", "GGTT", "TTAA"]
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(usr_root), t, "8", "25"], stdout=subprocess.PIPE, text=True)
             for t in tags]
    for p in procs:
        assert p.wait(120) == 0
    ds = Dataset.open(usr_root, "test/c")
    frame = ds.scan().collect()
    assert frame.height == 4 * 8 * 25 + 8  # every unique row; the 8 shared sequences once each
    assert frame["id"].n_unique() == frame.height
    rep = validate(ds)
    assert rep.ok, rep.errors
    appends = [e for e in __import__("dnadesign.core.events", fromlist=["x"]).read_events(ds.events_path) if e["action"] == "append"]
    assert sum(e["metrics"]["rows_added"] for e in appends) == frame.height


def test_sigkill_between_part_write_and_commit_leaves_dataset_valid(usr_root):
    ds = Dataset.create(usr_root, "test/c")
    before = ds.manifest().to_json()
    p = subprocess.Popen([sys.executable, "-c", SLOW_COMMIT, str(usr_root)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "parts-written"
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    assert ds.manifest().to_json() == before  # the batch is absent, not half-present
    rep = validate(ds)
    assert rep.ok and any("not referenced" in w for w in rep.warnings)
    # the lock died with the process: the next writer proceeds and gc clears the orphan
    from dnadesign.usr.schema import make_records

    ds.append(make_records(["TTTTGGGGCCCC"]))
    assert ds.gc() == 1 and validate(ds).warnings == []


PROGRESS_APPENDER = textwrap.dedent("""
    import sys
    from dnadesign.usr import parts
    from dnadesign.usr.store import Dataset
    from dnadesign.usr.schema import make_records
    root, tag, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    # progress markers only (no delay): the test kills on observed progress, not on a timer
    original = parts.write_batches
    def marked(*args, **kw):
        print("writing-part", flush=True)
        out = original(*args, **kw)
        print("part-written", flush=True)
        return out
    parts.write_batches = marked
    ds = Dataset(root, "test/c")
    alphabet = "ACGT"
    for b in range(batches):
        seqs = [tag + "".join(alphabet[((b * size + i) >> (2 * k)) & 3] for k in range(10)) for i in range(size)]
        shared = "GGGGGGGGGGGG" + "".join(alphabet[(b >> (2 * k)) & 3] for k in range(4))
        ds.append(make_records(seqs + [shared]), on_conflict="ignore")
        print(f"committed {b}", flush=True)
""")


def _kill_after(proc, commits: int, marker: str) -> int:
    """Read progress lines until `commits` batches committed and then `marker` appears; SIGKILL.
    Returns the number of commits seen (bounded: the appender's output ends when it exits)."""
    seen = 0
    for line in proc.stdout:
        if line.startswith("committed"):
            seen += 1
        elif seen >= commits and line.strip() == marker:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    return seen


def test_sigkill_at_random_moments_never_corrupts(usr_root):
    """Kill real appenders after K observed commits, at moments inside a write (while the part file
    is being written, after it is written but before the manifest swap), and check every time that
    the dataset validates, no committed batch is lost, and no batch is half-present."""
    import random

    rng = random.Random(11)
    Dataset.create(usr_root, "test/c")
    committed_rows = 0
    interrupted_writes = 0
    size = 400
    for attempt in range(6):
        marker = ("writing-part", "part-written")[attempt % 2]
        before = Dataset.open(usr_root, "test/c").manifest().rows
        p = subprocess.Popen([sys.executable, "-c", PROGRESS_APPENDER, str(usr_root), "ACG" + "ACGT"[attempt % 4] + "T" * attempt,
                              "50", str(size)], stdout=subprocess.PIPE, text=True)
        commits = _kill_after(p, rng.randint(1, 3), marker)
        assert commits >= 1  # the kill landed after real commits
        ds = Dataset.open(usr_root, "test/c")
        rep = validate(ds)
        assert rep.ok, rep.errors
        frame = ds.scan().collect()
        assert frame["id"].n_unique() == frame.height
        own = frame.filter(~frame["sequence"].str.starts_with("GGGGGGGGGGGG"))
        assert own.height % size == 0  # whole batches only
        added = ds.manifest().rows - before
        # every batch the appender reported committed is there; the interrupted one is whole or
        # absent (the kill may land just after the manifest swap, before "committed" is printed)
        assert (own.height - committed_rows) // size in (commits, commits + 1) and added >= commits * size
        committed_rows = own.height
        orphans, temps = ds.leftover_files()
        if orphans or temps:
            interrupted_writes += 1
            assert any("not referenced" in w or "temp file" in w for w in rep.warnings)
        ds.gc()
        assert ds.leftover_files() == ([], [])
    assert interrupted_writes >= 3  # the kills landed inside writes, not between them


KILLED_COMPACTION = textwrap.dedent("""
    import os, signal, sys
    from dnadesign.usr import parts
    from dnadesign.usr.store import Dataset
    original = parts.write_batches
    count = {"n": 0}
    def dying(*args, **kw):
        out = original(*args, **kw)
        count["n"] += 1
        if count["n"] == int(sys.argv[2]):
            print("outputs-written", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # fault injection: die between output parts / before the swap
        return out
    parts.write_batches = dying
    Dataset(sys.argv[1], "test/k").compact(target_rows=40)
""")


def test_sigkill_during_compaction_leaves_the_dataset_as_it_was(usr_root):
    import pyarrow as pa

    from dnadesign.usr.schema import make_records

    ds = Dataset.create(usr_root, "test/k")
    for b in range(12):
        recs = make_records(["ACGT" * 2 + "".join("ACGT"[(b * 16 + i) >> (2 * k) & 3] for k in range(5)) for i in range(16)])
        ds.append(recs, overlays={"lab": pa.table({"id": recs.column("id"), "v": [float(b)] * 16})})
    ds.write_overlay("infer", pa.table({"id": ds.scan().select("id").collect()["id"].to_arrow(), "p": [0.5] * 192}))
    before = ds.scan().collect()
    man_before = ds.manifest().to_json()
    for nth in (1, 3):
        p = subprocess.Popen([sys.executable, "-c", KILLED_COMPACTION, str(usr_root), str(nth)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "outputs-written"
        assert p.wait(60) == -signal.SIGKILL
        assert ds.manifest().to_json() == man_before  # nothing committed
        rep = validate(ds)
        assert rep.ok and any("not referenced" in w for w in rep.warnings), rep.warnings
        assert ds.scan().collect().equals(before)
    res = ds.compact(target_rows=40)
    assert res["parts_rewritten"] == 12 and validate(ds).warnings == []
    assert ds.scan().collect().equals(before)
