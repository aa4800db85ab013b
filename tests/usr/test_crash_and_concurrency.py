"""Real processes: concurrent appenders lose nothing; SIGKILL mid-append leaves a valid dataset."""

import os
import signal
import subprocess
import sys
import textwrap
import time

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


def test_sigkill_at_random_moments_never_corrupts(usr_root):
    Dataset.create(usr_root, "test/c")
    for attempt in range(6):
        p = subprocess.Popen([sys.executable, "-c", APPENDER, str(usr_root), "ACG" + "ACGT"[attempt % 4], "200", "50"],
                             stdout=subprocess.PIPE, text=True)
        time.sleep(1.0 + 0.37 * attempt)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        ds = Dataset.open(usr_root, "test/c")
        rep = validate(ds)
        assert rep.ok, rep.errors
        frame = ds.scan().collect()
        assert frame["id"].n_unique() == frame.height
        # whole batches only: each committed batch adds 50 own rows (+ at most one shared row)
        own = frame.filter(~frame["sequence"].str.starts_with("GGGGGGGGGGGG")).height
        assert own % 50 == 0
