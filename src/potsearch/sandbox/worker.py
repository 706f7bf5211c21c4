"""Sandbox worker process: ``python -m potsearch.sandbox.worker CONFIG_JSON``.

Started by :class:`potsearch.sandbox.pool.SandboxPool` with ``subprocess.Popen`` (a fresh
interpreter, never a fork of the caller), in its own session/process group, with a minimal
environment and an empty read-only working directory. Order matters:

1. import the *trusted* modules (numpy, math, the task modules) -- later imports would need file
   descriptors the limits no longer allow;
2. apply rlimits (core 0, file size 0, no new processes, no new file descriptors, address space =
   baseline + memory_mb, CPU = per call, with a lifetime hard cap);
3. drop privileges to ``nobody`` when running as root (root ignores RLIMIT_NPROC and could raise
   hard limits again); set ``PR_SET_NO_NEW_PRIVS``; install a seccomp filter (x86-64) that denies
   process creation, exec, signals, sockets, file creation/modification and write-opens;
4. report "ready" and serve ``call`` messages until the pipe closes.

Replies are JSON only; the parent never unpickles anything a candidate could influence. This module
imports only the sandbox's leaf modules it needs (the message format, the namespace, the result
checks), never the pool.
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import pickle
import resource
import sys

# the trusted imports (numpy with them) happen here, before main() applies the limits
from potsearch.sandbox.namespace import (
    Rejected, checked_program, compile_candidate, make_namespace, program_namespace
)
from potsearch.law.values import InvalidResult, check_finite
from potsearch.sandbox.wire import MAX_RESULT_VALUES, decode_payload, read_frame, send_json, to_plain

NOBODY = 65534


def _vm_size_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------------------------------------
# seccomp (x86-64 only; elsewhere the other layers still hold)
# ---------------------------------------------------------------------------------------------

_AUDIT_ARCH_X86_64 = 0xC000003E
_DENY = {  # x86-64 syscall numbers
    # processes, exec, tracing, signals to anyone
    "fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "execve": 59, "execveat": 322,
    "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_open": 434,
    "pidfd_send_signal": 424, "pidfd_getfd": 438, "personality": 135,
    # network
    "socket": 41, "socketpair": 53, "connect": 42, "bind": 49, "listen": 50, "accept": 43,
    "accept4": 288,
    # file creation / modification
    "creat": 85, "mkdir": 83, "mkdirat": 258, "rmdir": 84, "unlink": 87, "unlinkat": 263,
    "rename": 82, "renameat": 264, "renameat2": 316, "link": 86, "linkat": 265, "symlink": 88,
    "symlinkat": 266, "chmod": 90, "fchmod": 91, "fchmodat": 268, "fchmodat2": 452, "chown": 92,
    "fchown": 93, "lchown": 94, "fchownat": 260, "truncate": 76, "ftruncate": 77, "mknod": 133,
    "mknodat": 259, "utime": 132, "utimes": 235, "utimensat": 280, "futimesat": 261,
    "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197, "lremovexattr": 198,
    "fremovexattr": 199, "openat2": 437, "open_by_handle_at": 304, "name_to_handle_at": 303,
    "memfd_create": 319,
    # namespaces, mounts, privileges, kernel interfaces
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "setuid": 105, "setgid": 106, "setreuid": 113,
    "setregid": 114, "setresuid": 117, "setresgid": 119, "setgroups": 116, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249, "init_module": 175,
    "finit_module": 313, "delete_module": 176, "kexec_load": 246, "kexec_file_load": 320,
    "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163, "quotactl": 179,
}
_OPEN_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _install_seccomp() -> str:
    import platform

    if sys.platform != "linux" or platform.machine() != "x86_64":
        return "unavailable (not linux x86-64)"
    LD_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ALLOW, KILL, EPERM = 0x7FFF0000, 0x80000000, 0x00050000 | 1
    nrs = sorted(set(_DENY.values()))
    prog: list[tuple[int, int, int, int]] = [
        (LD_ABS, 0, 0, 4), (JEQ, 1, 0, _AUDIT_ARCH_X86_64), (RET, 0, 0, KILL), (LD_ABS, 0, 0, 0)]
    # positions: after the checks below come [open checks (6 insns)] [ALLOW] [DENY]
    n_checks = 1 + len(nrs)
    a = len(prog) + n_checks  # index of the open() check block
    allow_at, deny_at = a + 6, a + 7

    def to(target: int, pos: int) -> int:
        off = target - pos - 1
        assert 0 <= off <= 255
        return off

    prog.append((JGE, to(deny_at, len(prog)), 0, 0x40000000))  # x32 ABI: deny
    for nr in nrs:
        prog.append((JEQ, to(deny_at, len(prog)), 0, nr))
    assert len(prog) == a
    prog += [
        (JEQ, 0, to(a + 3, a), 2),                                  # open(path, flags)
        (LD_ABS, 0, 0, 16 + 8 * 1),
        (JSET, to(deny_at, a + 2), to(allow_at, a + 2), _OPEN_WRITE_FLAGS),
        (JEQ, 0, to(allow_at, a + 3), 257),                         # openat(dfd, path, flags)
        (LD_ABS, 0, 0, 16 + 8 * 2),
        (JSET, to(deny_at, a + 5), to(allow_at, a + 5), _OPEN_WRITE_FLAGS),
        (RET, 0, 0, ALLOW),
        (RET, 0, 0, EPERM),
    ]
    arr = (_SockFilter * len(prog))(*[_SockFilter(c, jt, jf, k) for c, jt, jf, k in prog])
    fprog = _SockFprog(len(prog), arr)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                           ctypes.c_ulong]
    if libc.prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return f"failed (no_new_privs errno {ctypes.get_errno()})"
    if libc.prctl(22, 2, ctypes.cast(ctypes.pointer(fprog), ctypes.c_void_p), 0, 0) != 0:
        return f"failed (errno {ctypes.get_errno()})"  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
    return "on"


# ---------------------------------------------------------------------------------------------


class _Limits:
    def __init__(self, cfg: dict) -> None:
        self.cpu_seconds = int(cfg["cpu_seconds"])
        self.cpu_lifetime = int(cfg["cpu_lifetime"])

    @staticmethod
    def cpu_used() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def arm_cpu(self) -> None:
        soft = min(int(math.ceil(self.cpu_used())) + self.cpu_seconds, self.hard_cpu)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, self.hard_cpu))

    def apply(self, cfg: dict) -> dict:
        used = self.cpu_used()
        self.hard_cpu = int(math.ceil(used)) + self.cpu_lifetime
        baseline = _vm_size_bytes()
        as_limit = baseline + int(cfg["memory_mb"]) * 1024 * 1024
        nofile = 5  # only 0-2 (/dev/null) and the two protocol pipes 3, 4: no new descriptor
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        for name in ("RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING"):
            if hasattr(resource, name):
                try:
                    resource.setrlimit(getattr(resource, name), (0, 0))
                except (ValueError, OSError):
                    pass
        self.arm_cpu()
        return {"as_bytes": as_limit, "baseline_bytes": baseline, "nofile": nofile,
                "cpu_seconds": self.cpu_seconds, "cpu_hard": self.hard_cpu}


def _relocate_fds(in_fd: int, out_fd: int) -> tuple[int, int]:
    """Leave exactly fds 0-2 and the protocol pipes as 3 (in) and 4 (out), so that with
    RLIMIT_NOFILE=5 there is no free slot for any new descriptor (open, socket, pipe, ...)."""
    import fcntl

    hi_in = fcntl.fcntl(in_fd, fcntl.F_DUPFD, 10)
    hi_out = fcntl.fcntl(out_fd, fcntl.F_DUPFD, 10)
    for f in os.listdir("/proc/self/fd"):
        fd = int(f)
        if fd > 2 and fd not in (hi_in, hi_out):
            try:
                os.close(fd)
            except OSError:
                pass
    os.dup2(hi_in, 3)
    os.dup2(hi_out, 4)
    os.close(hi_in)
    os.close(hi_out)
    return 3, 4


def _drop_privileges() -> str:
    if os.getuid() != 0:
        return "not root"
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    if os.getuid() != NOBODY or os.geteuid() != NOBODY:
        raise RuntimeError("setuid failed")
    return "nobody"


def main() -> None:
    cfg = json.loads(sys.argv[1])
    in_fd, out_fd = int(cfg["in_fd"]), int(cfg["out_fd"])
    try:
        import importlib

        for mod in cfg["modules"]:
            importlib.import_module(mod)
        sys.setrecursionlimit(1000)
        limits = _Limits(cfg)
        in_fd, out_fd = _relocate_fds(in_fd, out_fd)
        info = limits.apply(cfg)
        info["privileges"] = _drop_privileges() if cfg.get("drop_privileges", True) else "kept"
        info["seccomp"] = _install_seccomp() if cfg.get("seccomp", True) else "off"
    except BaseException as e:  # report and exit: the pool raises SandboxError
        try:
            send_json(out_fd, {"startup_error": f"{type(e).__name__}: {e}"})
        finally:
            os._exit(3)
    info.update(pid=os.getpid(), uid=os.getuid(), ready=True)
    send_json(out_fd, info)
    sys.stdout = sys.stderr = None  # type: ignore[assignment]
    _serve(in_fd, out_fd, limits)


def _read_only(obj, depth: int = 0):
    """Freeze the numpy arrays of a cached payload: a candidate must not be able to change the
    data later candidates see (e.g. ``np.add(a, b, a)`` writes into ``a``)."""
    import numpy as np

    if depth > 20:
        return obj
    if isinstance(obj, np.ndarray):
        obj.setflags(write=False)
    elif isinstance(obj, dict):
        for v in obj.values():
            _read_only(v, depth + 1)
    elif isinstance(obj, (list, tuple)) and obj and isinstance(obj[0], (np.ndarray, dict, list, tuple)):
        for v in obj:
            _read_only(v, depth + 1)
    return obj


def _serve(in_fd: int, out_fd: int, limits: _Limits) -> None:
    payloads: dict[int, object] = {}
    tasks: dict[str, object] = {}
    while True:
        try:
            msg = pickle.loads(read_frame(in_fd))  # from the trusted parent
        except EOFError:
            os._exit(0)
        kind = msg[0]
        if kind == "payload":
            payloads[msg[1]] = _read_only(pickle.loads(msg[2]))
            continue
        if kind == "drop":
            payloads.pop(msg[1], None)
            continue
        _, seq, src, task, encoded, checked = msg
        payload = decode_payload(encoded, payloads)
        reply = _run_one(src, task, payload, checked, limits, tasks)
        reply["cpu"] = limits.cpu_used()
        reply["seq"] = seq
        try:
            send_json(out_fd, reply)
        except (ValueError, TypeError, OverflowError, RecursionError) as e:
            send_json(out_fd, {"ok": False, "error": f"invalid result: cannot encode ({e})",
                               "cpu": limits.cpu_used(), "seq": seq})


_CODE_CACHE: dict = {}


def _run_one(src, task, payload, checked, limits: _Limits, tasks) -> dict:
    try:
        limits.arm_cpu()
        fn = tasks.get(task)
        if fn is None:
            mod, _, name = task.partition(":")
            if mod not in sys.modules:
                return {"ok": False, "error": f"exception: task module {mod!r} not preloaded"}
            fn = tasks[task] = getattr(sys.modules[mod], name)
        # checked and prepared once per source (a Program keeps no state between calls: each call
        # of one of its functions runs from a fresh start, so nothing a call does reaches the next)
        key = (src, bool(checked))
        prepared = _CODE_CACHE.get(key)
        if prepared is None:
            # the search's path: the allowlist, then the interpreter best_potential.py embeds (never
            # Python's exec); unchecked (the hostile suite only): compiled into a restricted namespace
            prepared = checked_program(src) if checked else compile_candidate(src, checked=False)
            if len(_CODE_CACHE) >= 64:
                _CODE_CACHE.pop(next(iter(_CODE_CACHE)))
            _CODE_CACHE[key] = prepared
        if checked:
            ns = program_namespace(prepared)
        else:
            ns = make_namespace()
            exec(prepared, ns)
        value = fn(ns, payload if payload is not None else {})
        value = to_plain(value, [MAX_RESULT_VALUES])
        if value is not None and type(value) is not dict:
            raise InvalidResult(f"task returned {type(value).__name__}, expected dict")
        check_finite(value)
        return {"ok": True, "value": value}
    except Rejected as e:
        return {"ok": False, "error": f"rejected: {e}"}
    except InvalidResult as e:
        return {"ok": False, "error": f"invalid result: {_text(e)}"}
    except MemoryError:
        return {"ok": False, "error": "killed: memory limit (MemoryError)", "recycle": True}
    except RecursionError as e:
        return {"ok": False, "error": f"exception: RecursionError: {_text(e)}", "recycle": True}
    except Exception as e:
        return {"ok": False, "error": f"exception: {type(e).__name__}: {_text(e)}"}
    except BaseException as e:  # SystemExit, KeyboardInterrupt, GeneratorExit, ...
        return {"ok": False, "error": f"exception: {type(e).__name__}: {_text(e)}", "recycle": True}


def _text(e: BaseException) -> str:
    try:
        s = str(e)
    except BaseException:
        s = "<unprintable>"
    return s[:500]


if __name__ == "__main__":
    main()
