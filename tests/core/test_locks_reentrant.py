"""FileLock: re-entrant within a thread, exclusive across threads and processes, shared mode."""

from __future__ import annotations

import threading

import pytest

from dnadesign.core.errors import LockTimeoutError
from dnadesign.core.locks import FileLock, read_holder


def _try(path, **kw) -> str:
    box: list[str] = []

    def go() -> None:
        try:
            with FileLock(path, timeout=0.2, **kw):
                box.append("got")
        except LockTimeoutError:
            box.append("blocked")

    t = threading.Thread(target=go)
    t.start()
    t.join()
    return box[0]


def test_nested_acquire_in_one_thread_does_not_deadlock_and_keeps_the_holder(tmp_path):
    p = tmp_path / "x.lock"
    with FileLock(p, timeout=0) as outer:
        with FileLock(p, timeout=0):
            assert read_holder(p) is not None
        assert outer.held and read_holder(p) is not None  # the inner release did not drop the lock
        assert _try(p) == "blocked"  # another thread still waits
    assert _try(p) == "got"


def test_shared_holders_coexist_and_exclude_an_exclusive_one(tmp_path):
    p = tmp_path / "x.lock"
    with FileLock(p, timeout=0, shared=True):
        assert _try(p, shared=True) == "got"
        assert _try(p) == "blocked"
    assert _try(p) == "got"
    with FileLock(p, timeout=0):
        assert _try(p, shared=True) == "blocked"


def test_an_exclusive_hold_covers_a_nested_shared_request(tmp_path):
    p = tmp_path / "x.lock"
    with FileLock(p, timeout=0), FileLock(p, timeout=0, shared=True):
        assert _try(p, shared=True) == "blocked"
    with pytest.raises(LockTimeoutError), FileLock(p, timeout=0, shared=True), FileLock(p, timeout=0.1):
        pass  # no upgrade from shared to exclusive
