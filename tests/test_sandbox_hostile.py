"""Hostile programs against the candidate sandbox (issue 6 acceptance: >= 25 contained).

Every program is run twice through the worker pool:

* ``checked``: the normal path -- the AST allowlist (layer 1) decides first;
* ``bypass``: with ``_bypass_ast_check=True`` so the raw source reaches the worker, to prove the
  second line (restricted namespace, rlimits, dropped privileges, seccomp, wall-clock SIGKILL)
  holds on its own. Many bypass programs first *escape* the namespace on purpose (via
  ``().__class__.__base__.__subclasses__()`` -> ``os`` globals) so the process limits are what is
  being tested, not just a missing builtin.

Each case asserts its specific reason category, that the pool still serves a good candidate
afterwards, and that nothing was written outside the run directory (a world-writable sentinel
directory, the test's cwd, the pool's working directory and /tmp are checked).
"""
from __future__ import annotations

import dataclasses
import os
import tempfile

import numpy as np
import pytest

from potsearch.sandbox import SandboxPool, check_source

SECRET_ENV = "POTSEARCH_HOSTILE_SECRET"
RAW = "potsearch.sandbox:return_raw"
PAYLOAD = {"x": {"length": np.arange(1.0, 6.0), "vowels": np.ones(5)}, "p": np.array([1.0, 2.0])}
GOOD = 'def potential(x, p):\n    return p[0] * x["length"] + p[1]\n'
GOOD_SUM = float(np.sum(np.arange(1.0, 6.0) + 2.0))

# Escape from the restricted namespace to the real ``os`` module globals (works without any
# builtin): the classic object-subclasses walk. Used only in bypass mode.
ESC = """
def _os():
    for c in ().__class__.__base__.__subclasses__():
        if c.__name__ == '_wrap_close':
            return c.__init__.__globals__
"""

R, T, K, E, I = "rejected", "timeout", "killed", "exception", "invalid result"
# B: on the normal path the evaluator's own bounds stop it first (an "exception: ProgramRefused: ..." result:
# steps, seconds, array size, work, sequence length, integer size), before the rlimits of the layers below
B = "bounded"


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    src: str
    checked: frozenset  # allowed categories on the normal path
    bypass: frozenset  # allowed categories with the AST check bypassed
    task: str = "potsearch.sandbox:call_potential"
    contains: str = ""  # substring the bypass error must contain (the specific reason)


def case(name, src, checked, bypass, task=None, contains=""):
    kw = {"task": task} if task else {}
    return Case(name, src.strip("\n") + "\n", frozenset(checked.split("|")),
                frozenset(bypass.split("|")), contains=contains, **kw)


CASES = [
    # --- new processes ------------------------------------------------------------------------
    case("fork_import_os", """
import os
def potential(x, p):
    while True:
        os.fork()
""", R, E, contains="ImportError"),
    case("fork_bomb_escaped", ESC + """
def potential(x, p):
    g = _os()
    for i in range(1000):
        g['fork']()
    return x['length']
""", R, E, contains="Error"),
    case("subprocess_escaped", ESC + """
def potential(x, p):
    sp = _os()['sys'].modules['subprocess']
    sp.run(['/bin/sh', '-c', 'touch SENTINEL/subprocess'])
    return x['length']
""", R, E),
    case("multiprocessing_escaped", ESC + """
def potential(x, p):
    mp = _os()['__builtins__']['__import__']('multiprocessing')
    mp.Process(target=print).start()
    return x['length']
""", R, E),
    case("os_system_escaped", ESC + """
def potential(x, p):
    rc = _os()['system']('touch SENTINEL/system')
    return x['length'] * (1 / (rc == 0))
""", R, E, contains="ZeroDivisionError"),
    # --- CPU / wall time ----------------------------------------------------------------------
    case("endless_while", """
def potential(x, p):
    while True:
        pass
""", R, f"{T}|{K}"),
    case("huge_range", """
def potential(x, p):
    s = 0
    for i in range(10**12):
        s = s + i
    return s
""", f"{T}|{K}|{B}", f"{T}|{K}"),  # a range is lazy: the step bound or the wall clock, whichever comes first
    case("int_power_bomb", """
def potential(x, p):
    return 2 ** 10 ** 10
""", R, f"{K}|{T}"),
    case("sleep_import_time", """
import time
def potential(x, p):
    time.sleep(100)
""", R, E, contains="ImportError"),
    case("sleep_escaped", ESC + """
def potential(x, p):
    _os()['sys'].modules['time'].sleep(100)
    return x['length']
""", R, T),
    # --- memory ---------------------------------------------------------------------------------
    case("np_ones_memory_bomb", """
import numpy as np
def potential(x, p):
    return np.ones(10**11)
""", B, K, contains="memory"),
    case("list_memory_bomb", """
def potential(x, p):
    return [0] * 10**10
""", B, K, contains="memory"),
    case("string_repeat_bomb", """
def potential(x, p):
    return 'ab' * 10**10
""", B, K, contains="memory"),
    case("deep_recursion", """
def f(n):
    return f(n + 1) + 1
def potential(x, p):
    return f(0)
""", R, E, contains="RecursionError"),
    case("mutual_recursion", """
def a(n):
    return b(n + 1)
def b(n):
    return a(n + 1)
def potential(x, p):
    return a(0) + x['length']
""", R, E, contains="RecursionError"),
    # --- imports by every route -------------------------------------------------------------------
    case("dunder_import", """
def potential(x, p):
    return __import__('os').system('touch SENTINEL/import')
""", R, E, contains="NameError"),
    case("builtins_dict", """
def potential(x, p):
    return __builtins__['__import__']('os').system('touch SENTINEL/builtins')
""", R, E, contains="KeyError"),
    case("mro_subclasses", """
def potential(x, p):
    for c in ().__class__.__mro__[1].__subclasses__():
        if c.__name__ == '_wrap_close':
            b = c.__init__.__globals__['__builtins__']
            b['open']('SENTINEL/mro', 'w').write('pwned')
    return x['length']
""", R, E),
    case("getattr_built_strings", """
import math
def potential(x, p):
    loader = getattr(math, '_' + '_lo' + 'ader_' + '_')
    return loader.load_module('os').system('touch SENTINEL/getattr')
""", R, E, contains="NameError"),
    case("getattr_import_concat", """
import numpy as np
def potential(x, p):
    return getattr(np, '__im' + 'port__')('os')
""", R, E, contains="NameError"),
    case("decorator_escaped", ESC + """
@(lambda f: f if _os()['system']('touch SENTINEL/decorator') == 0 else None)
def potential(x, p):
    return x['length']
""", R, I, contains="no function 'potential'"),
    case("class_definition", """
class Evil:
    pass
def potential(x, p):
    return x['length']
""", R, E, contains="__build_class__"),
    case("fstring_class", """
def potential(x, p):
    return f"{x.__class__.__mro__[-1].__subclasses__()}"
""", R, I),
    case("generator_frame_globals", """
def potential(x, p):
    return (g for g in []).gi_frame.f_globals['__builtins__']
""", R, I),
    case("generator_frame_walk", """
def potential(x, p):
    box = []
    def gen():
        yield box[0].gi_frame.f_back
    box.append(gen())
    caller = box[0].send(None)
    os = caller.f_back.f_globals['os']
    os.open('SENTINEL/framewalk', os.O_CREAT | os.O_WRONLY)
    return x['length']
""", R, E),
    case("np_lib_memmap", """
import numpy as np
def potential(x, p):
    return np.lib.format.open_memmap('SENTINEL/lib.npy', mode='w+', shape=(5,))
""", R, E, contains="AttributeError"),
    case("np_ctypeslib", """
import numpy as np
def potential(x, p):
    return np.ctypeslib.load_library('libc.so.6', '/lib/x86_64-linux-gnu')
""", R, E, contains="AttributeError"),
    case("np_load_file", """
import numpy as np
def potential(x, p):
    return np.load('/etc/passwd', allow_pickle=True)
""", R, E, contains="AttributeError"),
    case("math_loader", """
import math
def potential(x, p):
    return math.__loader__.load_module('os').system('touch SENTINEL/loader')
""", R, E, contains="AttributeError"),
    # --- reading files ----------------------------------------------------------------------------
    case("open_etc_passwd", """
def potential(x, p):
    return len(open('/etc/passwd').read()) + x['length']
""", R, E, contains="NameError"),
    case("open_escaped", ESC + """
def potential(x, p):
    data = _os()['__builtins__']['open']('/etc/passwd').read()
    return len(data) + x['length']
""", R, E),
    case("np_loadtxt_escaped", ESC + """
def potential(x, p):
    realnp = _os()['sys'].modules['numpy']
    return realnp.loadtxt('/etc/passwd', delimiter=':', usecols=(2,))[:5]
""", R, E),
    case("np_fromfile_escaped", ESC + """
def potential(x, p):
    realnp = _os()['sys'].modules['numpy']
    return realnp.fromfile('/etc/passwd', dtype=realnp.uint8)[:5] + 0.0
""", R, E),
    # --- writing files ----------------------------------------------------------------------------
    case("np_save_escaped", ESC + """
def potential(x, p):
    _os()['sys'].modules['numpy'].save('SENTINEL/save.npy', x['length'])
    return x['length']
""", R, E),
    case("np_savetxt_cwd_escaped", ESC + """
def potential(x, p):
    _os()['sys'].modules['numpy'].savetxt('written_in_cwd.txt', x['length'])
    return x['length']
""", R, E),
    case("tofile", """
def potential(x, p):
    x['length'].tofile('SENTINEL/tofile.bin')
    return x['length']
""", R, E),
    case("mkdir_escaped", ESC + """
def potential(x, p):
    _os()['mkdir']('SENTINEL/newdir')
    return x['length']
""", R, E),
    # --- huge output ------------------------------------------------------------------------------
    case("print_flood", """
def potential(x, p):
    for i in range(10**9):
        print('x' * 10**6)
""", R, E, contains="NameError"),
    case("stdout_flood_escaped", ESC + """
def potential(x, p):
    w = _os()['write']
    for i in range(10**9):
        w(1, b'x' * 10**6)
        w(2, b'x' * 10**6)
""", R, f"{T}|{K}"),
    case("return_1e9_array", """
import numpy as np
def potential(x, p):
    return np.zeros(10**9)
""", B, K, contains="memory"),
    case("return_1e7_raw", """
import numpy as np
def potential(x, p):
    return np.zeros(10**7)
""", I, I, task=RAW, contains="too large"),
    case("forged_reply_header", ESC + """
def potential(x, p):
    w = _os()['write']
    err = _os()['__builtins__']['OSError']
    for fd in range(3, 16):
        try:
            w(fd, (2**40).to_bytes(8, 'big') + b'{')
        except err:
            pass
    while True:
        pass
""", R, I, contains="too large"),
    case("forged_reply_sequence", ESC + """
def potential(x, p):
    w = _os()['write']
    body = b'{"ok": true, "value": {"sum": 0.0}, "seq": -1}'
    err = _os()['__builtins__']['OSError']
    for fd in range(3, 16):
        try:
            w(fd, len(body).to_bytes(8, 'big') + body)
        except err:
            pass
    while True:
        pass
""", R, I, contains="sequence"),
    # --- signals, exits, BaseException --------------------------------------------------------------
    case("ignore_sigxcpu_then_spin", ESC + """
def potential(x, p):
    sig = _os()['sys'].modules['signal']
    sig.signal(sig.SIGXCPU, sig.SIG_IGN)
    sig.signal(sig.SIGTERM, sig.SIG_IGN)
    while True:
        pass
""", R, T),
    case("kill_parent", ESC + """
def potential(x, p):
    g = _os()
    g['kill'](g['getppid'](), 28)
    return x['length']
""", R, E, contains="PermissionError"),
    case("killpg_parent_group", ESC + """
def potential(x, p):
    g = _os()
    g['killpg'](g['getpgid'](g['getppid']()), 28)
    return x['length']
""", R, E, contains="PermissionError"),
    case("sys_exit_import", """
import sys
def potential(x, p):
    sys.exit(0)
""", R, E, contains="ImportError"),
    case("sys_exit_escaped", ESC + """
def potential(x, p):
    _os()['sys'].exit(3)
""", R, E, contains="SystemExit"),
    case("os_exit_escaped", ESC + """
def potential(x, p):
    _os()['_exit'](0)
""", R, K, contains="exited"),
    case("raise_base_exception", """
def potential(x, p):
    raise BaseException('bye')
""", R, E, contains="NameError"),
    case("raise_keyboard_interrupt_escaped", ESC + """
def potential(x, p):
    raise _os()['__builtins__']['KeyboardInterrupt']('bye')
""", R, E, contains="KeyboardInterrupt"),
    # --- bad results --------------------------------------------------------------------------------
    case("result_string", """
def potential(x, p):
    return 'hello'
""", I, I),
    case("result_list", """
def potential(x, p):
    return [1, 2, 3]
""", I, I),
    case("result_none", """
def potential(x, p):
    return None
""", I, I),
    case("result_nan", """
import numpy as np
def potential(x, p):
    return x['length'] * np.nan
""", I, I, contains="NaN"),
    case("result_inf", """
import numpy as np
def potential(x, p):
    return np.log(x['length'] * 0.0)
""", I, I, contains="inf"),
    case("result_wrong_shape", """
import numpy as np
def potential(x, p):
    return np.ones(3)
""", I, I, contains="shape"),
    case("result_pickle_reduce", ESC + """
def potential(x, p):
    b = _os()['__builtins__']
    evil = b['type']('Evil', (b['object'],), {
        '__reduce__': lambda self: (b['exec'], ("open('SENTINEL/pickle', 'w')",))})
    return evil()
""", R, I, task=RAW, contains="not JSON-able"),
    # --- environment ----------------------------------------------------------------------------------
    case("env_secret_escaped", ESC + """
def potential(x, p):
    return float(_os()['environ']['POTSEARCH_HOSTILE_SECRET']) + x['length']
""", R, E, contains="KeyError"),
]


def _snapshot(*dirs: str) -> dict[str, list[str]]:
    out = {}
    for d in dirs:
        found = []
        for root, subdirs, files in os.walk(d):
            found += [os.path.join(root, n) for n in subdirs + files]
        out[d] = sorted(found)
    return out


def _tmp_pwned() -> list[str]:
    return sorted(n for n in os.listdir(tempfile.gettempdir()) if "pwned" in n or "hostile" in n)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    sentinel = str(tmp_path_factory.mktemp("sentinel"))
    os.chmod(sentinel, 0o777)  # world-writable on purpose: permissions alone must not save us
    cwd = os.getcwd()
    old_secret = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = "42"  # if a worker could read it, env_secret_escaped would succeed
    cases = [dataclasses.replace(c, src=c.src.replace("SENTINEL", sentinel)) for c in CASES]
    try:
        with SandboxPool(workers=2, cpu_seconds=2, memory_mb=512, wall_timeout=3) as pool:
            before = _snapshot(sentinel, pool._rundir)
            cwd_before, tmp_before = sorted(os.listdir(cwd)), _tmp_pwned()
            results = {}
            for mode in ("checked", "bypass"):
                by_task: dict[str, list[Case]] = {}
                for c in cases:
                    by_task.setdefault(c.task, []).append(c)
                for task, group in by_task.items():
                    jobs = []
                    for c in group:  # a good candidate after every hostile one
                        jobs += [(c.src, PAYLOAD), (GOOD, PAYLOAD)]
                    out = pool.map(jobs, task=task, _bypass_ast_check=(mode == "bypass"))
                    for j, c in enumerate(group):
                        results[(c.name, mode)] = (out[2 * j], out[2 * j + 1])
            final = pool.run(GOOD, payload=PAYLOAD)
            after = _snapshot(sentinel, pool._rundir)
            cwd_after, tmp_after = sorted(os.listdir(cwd)), _tmp_pwned()
            stats = dict(pool.stats)
    finally:
        if old_secret is None:
            os.environ.pop(SECRET_ENV, None)
        else:
            os.environ[SECRET_ENV] = old_secret
    return {"results": results, "final": final, "before": before, "after": after,
            "cwd": (cwd_before, cwd_after), "tmp": (tmp_before, tmp_after), "stats": stats}


def test_at_least_25_hostile_programs():
    assert len(CASES) >= 25
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_hostile_program_contained(c: Case, outcome):
    # layer 1 on its own
    reasons = check_source(c.src)
    if R in c.checked:
        assert reasons, f"{c.name} passed the AST check"
    else:
        assert not reasons, reasons
    for mode, allowed in (("checked", c.checked), ("bypass", c.bypass)):
        res, good = outcome["results"][(c.name, mode)]
        assert not res.ok, f"{c.name} [{mode}] was not contained: {res}"
        if B in allowed and res.category == E:
            assert res.error.startswith("exception: ProgramRefused:"), (c.name, mode, res)
        elif B in allowed and allowed == {B}:
            raise AssertionError(f"{c.name} [{mode}] was not stopped by the evaluator's bounds: {res.error}")
        else:
            assert res.error and res.category in allowed, f"{c.name} [{mode}]: {res.error}"
        if mode == "bypass" and c.contains:
            assert c.contains in res.error, f"{c.name} [bypass]: {res.error}"
        # the pool keeps serving a good candidate right after it
        assert good.ok, (c.name, mode, good)
        got = sum(good.value["value"]) if c.task == RAW else good.value["sum"]
        assert got == pytest.approx(GOOD_SUM), (c.name, mode, good)


def test_nothing_written_outside_run_directory(outcome):
    assert outcome["after"] == outcome["before"]
    for files in outcome["after"].values():
        assert files == []
    assert outcome["cwd"][0] == outcome["cwd"][1]
    assert outcome["tmp"][0] == outcome["tmp"][1]


def test_pool_still_serves_after_everything(outcome):
    assert outcome["final"].ok and outcome["final"].value["sum"] == pytest.approx(GOOD_SUM)
    assert outcome["stats"]["restarts"] > 0  # killed workers were replaced
