import multiprocessing as mp
import time

import pytest
from hypothesis import given, strategies as st

from dnadesign.core.errors import DatasetIdError, LockTimeoutError
from dnadesign.core.ids import record_id, validate_dataset_id
from dnadesign.core.jobs import classify, safe_exit_code
from dnadesign.core.locks import FileLock
from dnadesign.core.scheduler import detect_scheduler
from dnadesign.core.secrets import mask_url, redact, scrub_urls


@pytest.mark.parametrize("good", ["densegen/demo", "a/b", "ns0/x.y-z_1"])
def test_valid_dataset_ids(good):
    assert validate_dataset_id(good) == good


@pytest.mark.parametrize("bad", ["", "/abs/x", "../x", "a/../b", "a", "a/b/c", "A/b", "a/.hidden", "a/b c", "a/b;rm", "a/..", "a//b", "-a/b"])
def test_invalid_dataset_ids_rejected(bad):
    with pytest.raises(DatasetIdError):
        validate_dataset_id(bad)


@given(st.text(max_size=40))
def test_dataset_id_validation_never_admits_path_escapes(text):
    try:
        validate_dataset_id(text)
    except DatasetIdError:
        return
    assert ".." not in text and not text.startswith("/") and text.count("/") == 1 and " " not in text


@given(st.text(alphabet="ACGTacgt", min_size=1, max_size=50))
def test_record_id_is_case_insensitive_for_dna(seq):
    assert record_id("dna", seq) == record_id("dna", seq.upper()) == record_id("dna", f"  {seq}\n")
    assert len(record_id("dna", seq)) == 40


def test_record_id_known_value():
    import hashlib
    assert record_id("dna", "acgt") == hashlib.sha1(b"dna|ACGT").hexdigest()


def _hold(path, seconds):
    with FileLock(path, timeout=5, what="test lock"):
        time.sleep(seconds)


def test_lock_timeout_names_the_holder(tmp_path):
    p = mp.get_context("spawn").Process(target=_hold, args=(tmp_path / "x.lock", 3))
    p.start()
    deadline = time.time() + 10
    while time.time() < deadline and not (tmp_path / "x.lock").exists() or (tmp_path / "x.lock").stat().st_size == 0:
        time.sleep(0.05)
    with pytest.raises(LockTimeoutError) as exc:
        FileLock(tmp_path / "x.lock", timeout=0.2, what="test lock").acquire()
    assert f"pid {p.pid}" in exc.value.message
    p.join(10)
    with FileLock(tmp_path / "x.lock", timeout=1):
        pass


def test_scheduler_detection():
    slurm = detect_scheduler({"SLURM_JOB_ID": "12", "SLURM_ARRAY_JOB_ID": "10", "SLURM_ARRAY_TASK_ID": "3", "SLURM_CPUS_PER_TASK": "4"})
    assert (slurm.scheduler, slurm.job_id, slurm.task_id, slurm.cpus, slurm.run_key) == ("slurm", "10", "3", 4, "slurm:10_3")
    sge = detect_scheduler({"JOB_ID": "7", "SGE_TASK_ID": "undefined", "NSLOTS": "2", "SGE_ROOT": "/x"})
    assert (sge.scheduler, sge.task_id, sge.cpus) == ("sge", None, 2)
    assert detect_scheduler({"JOB_ID": "7"}).scheduler == "none"


def test_job_classification_and_exit_codes():
    assert classify(0, None) == "completed"
    assert classify(3, None) == "failed"
    assert classify(143, 15) == "cancelled"
    assert classify(None, 11) == "failed"
    assert safe_exit_code(99) == 1 and safe_exit_code(100) == 1 and safe_exit_code(143) == 143


def test_secrets_are_masked():
    url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    assert "XXXXSECRET" not in mask_url(url) and mask_url(url).startswith("https://hooks.slack.com/")
    assert "XXXXSECRET" not in scrub_urls(f"failed to post to {url}: 500")
    r = redact({"token": "abc", "nested": {"api_key": "k"}, "argv": ["--url=https://a/b", "--n", "3"]})
    assert r["token"] == "***" and r["nested"]["api_key"] == "***" and r["argv"][0] == "--url=***" and r["argv"][2] == "3"
