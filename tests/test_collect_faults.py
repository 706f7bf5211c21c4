"""Fault tests of the collector: a FAKE litellm provider that injects time-outs, exceptions, rate
limits, garbage and replies cut at max_tokens; a killed Ray actor; SIGKILL of the collector then --resume; joining a cluster.

The fake provider is registered in ``litellm.custom_provider_map`` inside every worker through
``--setup tests/test_collect_faults.py:register_fake`` (this file is loaded by path).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()
SETUP = f"{THIS}:register_fake"
PY = sys.executable


# ----------------------------------------------------------------------------- the fake provider
def _words() -> list[str]:
    lines = (ROOT / "data" / "words_sum100.tsv").read_text().splitlines()
    return [l.split("\t")[0] for l in lines[2:] if l]


def register_fake():
    """litellm provider ``fake/<behaviour>``: ``faults`` cycles through every failure kind; ``slow``
    answers a valid word after 30 ms (``slow0.2``: after 0.2 s)."""
    import asyncio

    from potsearch.llm.client import get_litellm, register_provider

    litellm = get_litellm()
    words = _words()

    class Fake(litellm.CustomLLM):
        calls = 0

        async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response, *args, **kw):
            Fake.calls += 1
            i = Fake.calls
            text = f"{words[i % len(words)]}"
            if model.startswith("slow"):  # slow, or slow0.2 for 0.2 s a call
                await asyncio.sleep(float(model[4:] or 0.03))
            elif model == "faults":
                k = i % 20
                if k == 3:
                    raise litellm.Timeout("fake time-out", model=model, llm_provider="fake")
                if k == 5:
                    raise litellm.RateLimitError("fake rate limit", llm_provider="fake", model=model)
                if k == 7:
                    raise litellm.InternalServerError("fake server error", llm_provider="fake", model=model)
                if k == 9:
                    await asyncio.sleep(30)  # hangs: our per-call timeout must cut it
                if k == 11:
                    raise ValueError("fake provider bug")  # litellm maps it to APIConnectionError
                if k == 13:
                    raise litellm.BadRequestError("fake bad request", model=model, llm_provider="fake")
                if k == 15:
                    text = "%%% ??? \x00 <garbage>"
                if k == 17:
                    text = ""
                if k == 19:  # max_tokens cut the reply mid-word
                    text = "THE ANSWER IS WIZ"
                    model_response.choices[0].finish_reason = "length"
            model_response.choices[0].message.content = text
            model_response.usage = litellm.Usage(prompt_tokens=50, completion_tokens=3, total_tokens=53)
            return model_response

        def completion(self, *a, **k):  # pragma: no cover - the collector is async
            raise NotImplementedError

    register_provider("fake", Fake())
    # a price for fake/priced, so that litellm's completion_cost knows it ($1 per million tokens in, $2 out)
    litellm.register_model({"fake/priced": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
                                            "litellm_provider": "fake", "mode": "chat", "max_tokens": 4096}})


# ----------------------------------------------------------------------------- helpers


def _store(run):
    from potsearch.store import RunStore

    return RunStore.open(run)


def _uids(run) -> list[str]:
    with _store(run) as s:
        return list(s.samples_frame()["uid"])


def _per_source(run) -> dict[str, int]:
    with _store(run) as s:
        return {k: int(n) for k, n in s.samples_frame().groupby("source_key").size().items()}


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


def _killpg(proc: subprocess.Popen) -> None:
    """Kill the process group we started (the collector or `ray start` and every child of it)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


# ----------------------------------------------------------------------------- tests
def test_faults_are_retried_recorded_and_the_run_completes(tmp_path, ray_session):
    from potsearch.collector import CollectConfig, collect

    run = tmp_path / "faults"
    res = collect(CollectConfig(agent="word", provider="fake/faults", mode="free", run=str(run), max_samples=120,
                                samples_per_state=5, workers=2, timeout=0.5, retries=3, backoff=0.01,
                                setup=[SETUP], progress=False))
    s = res.summary
    assert s["samples"] == 120 and res.new_samples == 120
    uids = _uids(run)
    assert len(set(uids)) == 120
    assert max(_per_source(run).values()) <= 5
    with _store(run) as st:
        df = st.samples_frame()
        errors = list(df.error.dropna())
        joined = " | ".join(errors)
        reasons = st.escape_reasons(limit=None)
        failed = [e["payload"] for e in st.events(kind="call_failed")]
        usage = st.usage_stats()
        tokens = (usage["tokens_in"], usage["tokens_out"])
    # every retried error kind is recorded on the sample that finally succeeded
    for kind in ("Timeout", "RateLimitError", "InternalServerError", "APIConnectionError"):
        assert kind in joined, kind
    assert "no reply within 0.5s" in joined              # the hanging call was cut by our timeout
    # garbage and empty replies are escapes with a reason, never a crash
    assert reasons.get("no word", 0) >= 2, reasons
    # a reply cut by max_tokens says so in its escape reason
    assert any(r.startswith("cut at max_tokens: ") for r in reasons), reasons
    # a non-retryable error is not a sample: it is an event, and its position is planned again
    # (or a retryable one that outlived its retries); never a sample, always an event
    assert any(str(f.get("error", "")).startswith("BadRequestError") for f in failed)
    assert s["failed_calls"] == len(failed) and s["positions_given_up"] == 0
    assert tokens == (120 * 50, 120 * 3)


def test_token_and_cost_budgets_stop_the_run(tmp_path, ray_session):
    from potsearch.collector import CollectConfig, collect

    # every call: 50 tokens in + 3 out = 53 tokens, $0.000056
    res = collect(CollectConfig(agent="word", provider="fake/slow", mode="free", run=str(tmp_path / "tok"),
                                max_tokens=53 * 30, workers=1, setup=[SETUP], progress=False))
    s = res.summary
    assert res.stop_reason.startswith("token budget") and 30 <= s["samples"] <= 30 + 8   # + what was in flight
    # its price, given as a prices table (litellm's map does not know the fake model): $1 / $2 per million
    # tokens, 50 x 1e-6 + 3 x 2e-6 = $0.000056 a call; the cap counts calls in flight, so it holds
    prices = tmp_path / "prices.yaml"
    prices.write_text("fake/priced: {input: 1.0, output: 2.0}\n")
    res = collect(CollectConfig(agent="word", provider="fake/priced", mode="free", run=str(tmp_path / "cost"),
                                max_cost=0.001, prices=str(prices), workers=1, setup=(SETUP,), progress=False))
    s = res.summary
    assert res.stop_reason.startswith("cost budget")
    # never over the cap; it stops early by at most what one call could cost at worst (its prompt estimate
    # and max tokens per call: llm/limits.SpendCap), here well under half the cap
    assert s["cost"] == pytest.approx(s["samples"] * 56e-6) and 0.0005 <= s["cost"] <= 0.001


def test_a_killed_actors_work_is_retried(tmp_path, ray_session):
    ray = ray_session
    from potsearch.collector import CollectConfig, collect

    seen: dict = {}

    def hook(state):
        if "killed" not in seen and state["samples"] >= 10:
            mine = [t.uid for a, tasks, _ in state["inflight"].values() if a == 0 for t in tasks]
            if not mine:
                return
            seen["pid"] = ray.get(state["actors"][0].pid.remote(), timeout=30)
            seen["killed"] = mine
            ray.kill(state["actors"][0], no_restart=False)
        elif "killed" in seen and "new_pid" not in seen and state["samples"] >= 40:
            seen["new_pid"] = ray.get(state["actors"][0].pid.remote(), timeout=60)

    run = tmp_path / "kill"
    res = collect(CollectConfig(agent="word", provider="fake/slow", mode="free", run=str(run), max_samples=80,
                                samples_per_state=8, workers=2, setup=[SETUP], progress=False, timeout=10),
                  on_batch=hook)
    assert seen.get("killed"), "the actor was never killed mid-batch"
    assert res.summary["samples"] == 80
    uids = _uids(run)
    assert len(uids) == len(set(uids)) == 80
    assert set(seen["killed"]) <= set(uids)              # its in-flight positions were retried and stored
    assert seen["new_pid"] != seen["pid"]                # and the actor was restarted


@pytest.mark.slow
@pytest.mark.parametrize("provider,total,kill_at", [("fake/slow0.2", 150, 30), ("surrogate", 60000, 8000)])
def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path, provider, total, kill_at):
    from collect_run_helpers import stored_count   # here, not at the top: workers load this file by path

    run = tmp_path / "killed"
    args = [PY, "-m", "potsearch", "collect", "--agent", "word", "--provider", provider, "--run", str(run),
            "--max-samples", str(total), "--workers", "2", "--no-progress", "--setup", SETUP]
    if provider == "surrogate":
        args += ["--samples-per-state", "100", "--seed", "1"]
    else:
        args += ["--samples-per-state", "5", "--mode", "free"]
    env = _env()
    if provider == "surrogate":  # 60k samples/s: pause after each write so the kill lands mid-run
        env["POTSEARCH_TEST_PAUSE_AFTER_WRITE"] = "0.5"
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        n = 0
        while time.time() < deadline and proc.poll() is None:
            if (run / "store.sqlite").exists():
                n = stored_count(run / "store.sqlite")
                if n >= kill_at:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        _killpg(proc)
    with _store(run) as s:
        at_kill = s.n_samples()
    assert kill_at <= at_kill < total
    done = subprocess.run(args + ["--resume"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=300, start_new_session=True)
    assert done.returncode == 0, done.stderr[-2000:]
    uids = _uids(run)
    assert len(uids) == total and len(set(uids)) == total
    k = 100 if provider == "surrogate" else 5
    assert max(_per_source(run).values()) <= k
    assert f"potsearch fit {run}" in done.stdout
    with _store(run) as s:
        kinds = [e["kind"] for e in s.events(stage="collect")]
    assert kinds[:2] == ["start", "resume"] and kinds[-1] == "end"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_joins_an_existing_ray_cluster_through_address(tmp_path):
    ray_bin = Path(PY).parent / "ray"
    if not ray_bin.exists():
        pytest.skip("the ray command line is not installed next to this Python")
    port = _free_port()
    env = _env()
    env["RAY_AUTH_MODE"] = "token"                 # Ray token auth: the head and the driver share a token
    env["RAY_AUTH_TOKEN"] = os.urandom(32).hex()
    # its own temp dir: the head's "current cluster" file must not leak to other Ray users of this machine
    temp = tempfile.mkdtemp(prefix="psray", dir="/tmp")
    head = subprocess.Popen([str(ray_bin), "start", "--head", "--port", str(port), "--num-cpus", "2",
                             "--include-dashboard=false", "--disable-usage-stats", "--block", "--temp-dir", temp],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None, head.stdout.read().decode()[-2000:]
            time.sleep(0.2)
        run = tmp_path / "cluster"
        done = subprocess.run([PY, "-m", "potsearch", "collect", "--agent", "word", "--provider", "surrogate",
                               "--run", str(run), "--max-samples", "3000", "--address", f"127.0.0.1:{port}",
                               "--no-progress"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(set(_uids(run))) == 3000
        import json

        with _store(run) as s:
            start = s.events(kind="start")[0]["payload"]
        assert start["address"] == f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        _killpg(head)
        shutil.rmtree(temp, ignore_errors=True)
