"""Layers 3 and 4 of the sandbox: the pool of persistent, locked-down worker processes.

Each worker is a ``subprocess.Popen`` of ``potsearch.sandbox.worker`` (never a ``fork`` of the caller,
never a Ray actor) with a minimal environment (no API keys) and an empty read-only working
directory; the worker itself applies its rlimits, drops privileges and installs its seccomp filter
(see _worker.py). The parent enforces a wall-clock timeout and SIGKILLs the worker's whole process
group; a dead worker is replaced, so whatever a candidate does, the pool keeps serving. Replies are
validated again here (wire.py has the message format).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Iterable, Sequence

from potsearch.sandbox.allowlist import MAX_SOURCE_CHARS, check_source
from potsearch.law.values import InvalidResult, check_finite
from potsearch.sandbox.results import CATEGORIES, SandboxError, SandboxResult
from potsearch.sandbox.wire import HDR, MAX_RESULT_BYTES, PayloadParts, read_frame, send_pickle

__all__ = ["SandboxPool"]


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def _task_module(task: str) -> str:
    mod, sep, fn = task.partition(":")
    if not sep or not mod or not fn or not all(p.isidentifier() for p in mod.split(".")) \
            or not fn.isidentifier():
        raise ValueError(f"task must be 'package.module:function', got {task!r}")
    return mod


class _Worker:
    __slots__ = ("proc", "to_w", "from_w", "payloads", "ready", "calls", "cpu_used", "info",
                 "modules")

    def __init__(self, proc: subprocess.Popen, to_w: int, from_w: int, modules: tuple[str, ...]):
        self.proc = proc
        self.to_w = to_w
        self.from_w = from_w
        self.payloads: set[int] = set()
        self.ready = False
        self.calls = 0
        self.cpu_used = 0.0
        self.info: dict = {}
        self.modules = modules


@dataclasses.dataclass
class _Job:
    index: int
    src: str
    payload: tuple
    timeout: float
    checked: bool
    t0: float = 0.0
    deadline: float = 0.0
    seq: int = 0


class SandboxPool:
    """A pool of persistent, locked-down worker processes that run untrusted candidates.

    ``workers``: processes; ``cpu_seconds``: CPU limit per call (kernel RLIMIT_CPU);
    ``memory_mb``: address space a call may add on top of the worker's baseline after its trusted
    imports (RLIMIT_AS = baseline + memory_mb); ``wall_timeout``: default wall-clock limit per call,
    enforced by the parent with SIGKILL of the worker's process group. ``tasks``: task modules to
    import in every worker before the limits are applied (tasks first seen in ``run``/``map`` are
    added and the workers restarted once). Thread-safe (calls are serialised); use one pool per
    process. Payloads are sent once per worker and cached by identity: treat a payload dict as
    immutable once passed (pass a new dict for new data).
    """

    def __init__(self, workers: int = 2, cpu_seconds: float = 10, memory_mb: int = 1024,
                 wall_timeout: float = 20, *, tasks: Iterable[str] = (),
                 max_calls_per_worker: int = 20_000, startup_timeout: float = 120.0,
                 drop_privileges: bool = True, seccomp: bool = True) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.n_workers = int(workers)
        self.cpu_seconds = max(1, int(math.ceil(cpu_seconds)))
        self.memory_mb = int(memory_mb)
        self.wall_timeout = float(wall_timeout)
        self.max_calls_per_worker = int(max_calls_per_worker)
        self.startup_timeout = float(startup_timeout)
        self.drop_privileges = drop_privileges
        self.seccomp = seccomp
        self._modules: tuple[str, ...] = tuple(dict.fromkeys(
            ["potsearch.sandbox"] + [_task_module(t) if ":" in t else t for t in tasks]))
        self._lock = threading.RLock()
        self._payloads = PayloadParts()
        self._rundir = tempfile.mkdtemp(prefix="potsearch-sandbox-")
        os.chmod(self._rundir, 0o555)  # empty and read-only for the (unprivileged) worker
        self._workers: list[_Worker | None] = [None] * self.n_workers
        self._closed = False
        self._owner = os.getpid()  # a forked child must neither use nor kill the parent's workers
        self._seq = 0
        self.stats = {"calls": 0, "restarts": 0, "timeouts": 0, "killed": 0, "payload_bytes": 0}
        for i in range(self.n_workers):
            self._workers[i] = self._spawn()

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def close(self) -> None:
        if os.getpid() != getattr(self, "_owner", None):
            return  # a forked copy of the pool: the workers belong to the parent process
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for i, w in enumerate(self._workers):
                if w is not None:
                    self._kill(w)
                    self._workers[i] = None
            try:
                os.chmod(self._rundir, 0o700)
                shutil.rmtree(self._rundir, ignore_errors=True)
            except OSError:
                pass

    def _spawn(self) -> _Worker:
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        config = {
            "in_fd": to_r, "out_fd": from_w, "modules": list(self._modules),
            "cpu_seconds": self.cpu_seconds, "memory_mb": self.memory_mb,
            "cpu_lifetime": self.cpu_seconds * 50 + 60,
            "drop_privileges": self.drop_privileges, "seccomp": self.seccomp,
        }
        env = {
            "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1", "PYTHONHASHSEED": "0",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1",
            # the parent's import path (so the worker finds the same trusted task modules);
            # nothing else from the parent's environment (API keys stay out).
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)),
        }
        try:
            proc = subprocess.Popen(
                [sys.executable, "-s", "-B", "-m", "potsearch.sandbox.worker", json.dumps(config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(to_r, from_w), close_fds=True, start_new_session=True,
                cwd=self._rundir, env=env)
        finally:
            os.close(to_r)
            os.close(from_w)
        return _Worker(proc, to_w, from_r, self._modules)

    def _kill(self, w: _Worker) -> None:
        for fd in (w.to_w, w.from_w):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(w.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            w.proc.kill()
        except OSError:
            pass
        try:
            w.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable only if in D state
            pass

    def _replace(self, slot: int) -> None:
        w = self._workers[slot]
        if w is not None:
            self._kill(w)
        self.stats["restarts"] += 1
        self._workers[slot] = self._spawn()

    def _ensure_ready(self, slot: int) -> _Worker:
        for attempt in range(2):
            w = self._workers[slot]
            if w is None or w.modules != self._modules:
                self._replace(slot)
                w = self._workers[slot]
            assert w is not None
            if w.ready:
                return w
            r, _, _ = select.select([w.from_w], [], [], self.startup_timeout)
            if not r:
                self._kill(w)
                self._workers[slot] = None
                raise SandboxError(f"sandbox worker did not start within {self.startup_timeout:g}s")
            try:
                msg = json.loads(read_frame(w.from_w))
                if not isinstance(msg, dict):
                    raise ValueError("not a dict")
            except (EOFError, OSError, ValueError) as e:
                rc = w.proc.poll()
                msg = {"startup_error": f"worker died during startup (exit {rc}): {e!r}"}
            if "startup_error" in msg:
                self._kill(w)
                self._workers[slot] = None
                if attempt == 1:
                    raise SandboxError(f"sandbox worker failed to start: {msg['startup_error']}")
                continue
            w.ready = True
            w.info = msg
            return w
        raise SandboxError("unreachable")  # pragma: no cover

    def worker_info(self) -> list[dict]:
        """What each worker reported at startup (pid, uid, limits, seccomp status)."""
        with self._lock:
            return [self._ensure_ready(i).info for i in range(self.n_workers)]

    # -- payloads (wire.PayloadParts: big values sent once per worker, cached by identity) ----------
    def _trim_parts(self) -> None:
        for pid in self._payloads.trim():
            for w in self._workers:
                if w is not None and pid in w.payloads:
                    try:
                        self._send(w, ("drop", pid, None))
                    except OSError:
                        pass
                    w.payloads.discard(pid)

    @staticmethod
    def _send(w: _Worker, msg: tuple) -> None:
        send_pickle(w.to_w, msg)

    # -- running -------------------------------------------------------------------------------------
    def run(self, src: str, task: str = "potsearch.sandbox:call_potential",
            payload: Any = None, timeout: float | None = None, *,
            _bypass_ast_check: bool = False) -> SandboxResult:
        """Run ``task(namespace, payload)`` in a worker on the candidate ``src``."""
        return self.map([(src, payload)], task=task, timeout=timeout,
                        _bypass_ast_check=_bypass_ast_check)[0]

    def map(self, jobs: Sequence[tuple[str, Any]], task: str = "potsearch.sandbox:call_potential",
            timeout: float | None = None, *, _bypass_ast_check: bool = False) -> list[SandboxResult]:
        """Run many ``(src, payload)`` jobs in parallel over the workers; results keep job order.

        ``_bypass_ast_check`` skips layer 1 (parent and worker) -- for the hostile test suite only.
        """
        mod = _task_module(task)
        wall = self.wall_timeout if timeout is None else float(timeout)
        with self._lock:
            if self._closed:
                raise SandboxError("pool is closed")
            if os.getpid() != self._owner:
                raise SandboxError("a SandboxPool cannot be used from a forked child process")
            if mod not in self._modules:
                self._modules = self._modules + (mod,)  # workers restart with it imported
            results: list[SandboxResult | None] = [None] * len(jobs)
            pending: list[_Job] = []
            for i, (src, payload) in enumerate(jobs):
                # The allowlist itself runs in the worker (in parallel, before anything executes);
                # only what cannot even be sent is refused here.
                if not isinstance(src, str) or len(src) > MAX_SOURCE_CHARS:
                    why = check_source(src) if isinstance(src, str) else ["source must be str"]
                    results[i] = SandboxResult(False, None, "rejected: " + "; ".join(why), 0.0)
                    continue
                pending.append(_Job(i, src, self._payloads.encode(payload), wall,
                                    not _bypass_ast_check))
            try:
                self._schedule(pending, task, results)
            finally:
                self._trim_parts()
            self.stats["calls"] += len(jobs)
            return [r for r in results if r is not None]

    def _dispatch(self, slot: int, job: _Job, task: str) -> bool:
        w = self._ensure_ready(slot)
        if w.calls >= self.max_calls_per_worker or \
                w.cpu_used + self.cpu_seconds + 1 >= w.info.get("cpu_hard", 0):
            self._replace(slot)
            w = self._ensure_ready(slot)
        try:
            whole, refs, _ = job.payload
            for pid in ([whole] if whole is not None else [p for _, p in refs]):
                if pid not in w.payloads:
                    self._send(w, ("payload", pid, self._payloads.blobs[pid]))
                    w.payloads.add(pid)
                    self.stats["payload_bytes"] += len(self._payloads.blobs[pid])
            self._seq += 1
            job.seq = self._seq
            self._send(w, ("call", job.seq, job.src, task, job.payload, job.checked))
        except (BrokenPipeError, OSError):
            self._replace(slot)
            return False
        w.calls += 1
        job.t0 = time.perf_counter()
        job.deadline = job.t0 + job.timeout
        return True

    def _schedule(self, jobs: list[_Job], task: str, results: list) -> None:
        queue = list(reversed(jobs))
        busy: dict[int, _Job] = {}  # slot -> job
        retries: dict[int, int] = {}
        while queue or busy:
            for slot in range(self.n_workers):
                if slot not in busy and queue:
                    job = queue.pop()
                    if self._dispatch(slot, job, task):
                        busy[slot] = job
                    else:
                        retries[job.index] = retries.get(job.index, 0) + 1
                        if retries[job.index] > 3:
                            results[job.index] = SandboxResult(False, None,
                                                               "killed: worker unavailable", 0.0)
                        else:
                            queue.append(job)
            if not busy:
                continue
            now = time.perf_counter()
            wait = max(0.0, min(j.deadline for j in busy.values()) - now)
            fds = {self._workers[s].from_w: s for s in busy}  # type: ignore[union-attr]
            r, _, _ = select.select(list(fds), [], [], wait)
            done = [fds[fd] for fd in r]
            now = time.perf_counter()
            for slot in list(busy):
                job = busy[slot]
                if slot in done:
                    results[job.index] = self._collect(slot, job)
                    del busy[slot]
                elif now >= job.deadline:
                    w = self._workers[slot]
                    assert w is not None
                    self._kill(w)
                    self._workers[slot] = None
                    self.stats["timeouts"] += 1
                    self._replace(slot)
                    results[job.index] = SandboxResult(
                        False, None, f"timeout after {job.timeout:g}s (worker killed)", now - job.t0)
                    del busy[slot]

    def _collect(self, slot: int, job: _Job) -> SandboxResult:
        w = self._workers[slot]
        assert w is not None
        try:
            grace = max(job.deadline, time.perf_counter() + 2.0)
            (n,) = HDR.unpack(self._read_body(w, HDR.size, grace))
            if n > MAX_RESULT_BYTES:
                raise InvalidResult(f"result too large ({n} bytes)")
            # the body follows at once; bound the wait anyway
            body = self._read_body(w, n, grace)
            msg = json.loads(body)
            if not isinstance(msg, dict) or "ok" not in msg:
                raise InvalidResult("malformed reply")
            if msg.get("seq") != job.seq:
                raise InvalidResult("reply out of sequence")
        except EOFError:
            return self._dead(slot, job)
        except (InvalidResult, ValueError, RecursionError, OSError) as e:
            self._replace(slot)
            self.stats["killed"] += 1
            text = str(e) if isinstance(e, InvalidResult) else f"malformed reply ({type(e).__name__})"
            return SandboxResult(False, None, f"invalid result: {text}", time.perf_counter() - job.t0)
        seconds = time.perf_counter() - job.t0
        cpu = msg.get("cpu")
        w.cpu_used = float(cpu) if type(cpu) in (int, float) else 1e9  # unknown: recycle next time
        if msg.get("recycle"):
            self._replace(slot)
        if msg["ok"] is True:
            value = msg.get("value")
            try:
                if value is not None and not isinstance(value, dict):
                    raise InvalidResult(f"task returned {type(value).__name__}, expected dict")
                check_finite(value)
            except InvalidResult as e:
                return SandboxResult(False, None, f"invalid result: {e}", seconds)
            except RecursionError:
                return SandboxResult(False, None, "invalid result: nested too deeply", seconds)
            return SandboxResult(True, value, None, seconds)
        err = msg.get("error")
        if not isinstance(err, str) or err.split(":", 1)[0] not in CATEGORIES:
            err = "invalid result: malformed error"
        return SandboxResult(False, None, err[:2000], seconds)

    def _read_body(self, w: _Worker, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            r, _, _ = select.select([w.from_w], [], [], max(0.0, deadline - time.perf_counter()))
            if not r:
                raise InvalidResult("reply truncated (timeout)")
            b = os.read(w.from_w, min(n - got, 1 << 20))
            if not b:
                raise EOFError
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)

    def _dead(self, slot: int, job: _Job) -> SandboxResult:
        w = self._workers[slot]
        assert w is not None
        try:
            rc = w.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        self._replace(slot)
        self.stats["killed"] += 1
        seconds = time.perf_counter() - job.t0
        if rc is None:
            why = "worker closed its pipe"
        elif rc < 0:
            sig = -rc
            why = {signal.SIGXCPU: "cpu limit", signal.SIGXFSZ: "file size limit",
                   signal.SIGSYS: "forbidden system call"}.get(sig, f"signal {_signal_name(sig)}")
        else:
            why = f"worker exited with code {rc}"
        return SandboxResult(False, None, f"killed: {why}", seconds)
