"""A full disk and a read-only run directory: one clear line, exit 2, the store intact.

Uses a small tmpfs mount (needs root and mount permission); skips with the reason otherwise.
"""
import subprocess
import sys

import pytest

from potsearch.store import RunStore


def _mount(path, size="4m"):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip() or 'not permitted'})")
    return path


def _umount(path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "potsearch", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def _integrity(store_path):
    from potsearch.store import RunStore

    with RunStore.open(store_path) as st:
        return st.integrity_check(), st.n_samples()


def test_full_disk_import_fails_cleanly(tmp_path, table2):
    mnt = _mount(tmp_path / "disk", "3m")
    try:
        run = mnt / "r"
        assert _cli("import", table2, "--run", run).returncode == 0
        ok, before = _integrity(run / "store.sqlite")
        assert ok == "ok" and before == 20219
        big = tmp_path / "big.csv"
        with open(big, "w") as fh:
            fh.write("source,target,count\n")
            for i in range(3000):
                fh.write(f"STATE{i:05d}{'X' * 200},STATE{i + 1:05d}{'Y' * 200},5\n")
        r = _cli("import", big, "--run", run)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert "full" in r.stderr.lower()
        ok, after = _integrity(run / "store.sqlite")
        assert ok == "ok" and after == before
    finally:
        _umount(mnt)


def test_read_only_run_directory(tmp_path, table2):
    mnt = _mount(tmp_path / "ro", "8m")
    try:
        run = mnt / "r"
        assert _cli("import", table2, "--run", run).returncode == 0
        RunStore.open(run).close()
        r = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True)
        if r.returncode != 0:
            pytest.skip("cannot remount read-only here")
        for args in (("import", table2, "--run", run), ("fit", run)):
            r = _cli(*args)
            assert r.returncode == 2, (args, r.stdout, r.stderr)
            assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
        subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
        ok, n = _integrity(run / "store.sqlite")
        assert ok == "ok" and n == 20219
    finally:
        _umount(mnt)


def test_two_collectors_on_one_run(tmp_path):
    """Two processes writing one run: the second is refused with one line, exit 2; the first completes."""
    import os
    import time

    run = tmp_path / "two"
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", POTSEARCH_TEST_PAUSE_AFTER_WRITE="0.3")
    args = [sys.executable, "-m", "potsearch", "collect", "--agent", "word", "--provider", "surrogate", "--run",
            str(run), "--max-samples", "20000", "--samples-per-state", "50", "--workers", "1", "--no-progress"]
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / ".lock").exists() or "collect" not in (run / ".lock").read_text():
            assert time.time() < deadline and first.poll() is None
            time.sleep(0.05)
        second = subprocess.run(args + ["--resume"], env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert second.stderr.count("\n") == 1 and "run is busy" in second.stderr, second.stderr
        out, err = first.communicate(timeout=600)
        assert first.returncode == 0, err[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
    ok, n = _integrity(run / "store.sqlite")
    assert ok == "ok" and n == 20000
