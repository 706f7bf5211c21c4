"""Collector throughput, as ratios against baselines measured in the same run.

1. Local model (SmolLM2 via llama-cpp-python), the same prompts, seeds and grammar three ways:
   - raw:      llama-cpp-python ``create_chat_completion`` in this process (the baseline);
   - litellm:  our ``LLMClient`` -> litellm -> the ``potsearch-local`` custom provider, same process;
   - collect:  the full path (``collect()``: Ray actor, litellm, parse, SQLite), one worker, one thread.
   The prompts are those the ``collect`` run planned (read back from its store), replayed on raw.
2. litellm overhead per call: an instant fake provider through ``LLMClient`` vs calling it directly.
3. Surrogate: ``collect()`` samples/s (2 workers, batched ``step_batch``, SQLite writes) beside a
   bare Ray baseline (the same number of actor calls, each returning its batch untouched).

    python benchmarks/collect_bench.py [--n 40] [--surrogate-samples 60000] [--skip-local]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import emit  # noqa: E402


def _replay_prompts(run: Path):
    from potsearch.collector import task_seed
    from potsearch.store import RunStore

    with RunStore.open(run) as s:
        conf = s.run_info()["config"]
        rows = s.conn.execute("SELECT s.uid, st.text FROM samples s JOIN states st ON st.id = s.source_id "
                              "ORDER BY s.id").fetchall()
    seed = conf["plan"]["seed"]
    return [(text, task_seed(seed, uid)) for uid, text in rows], conf


def bench_local(n: int, mode: str, agent_name: str) -> dict:
    import ray

    from potsearch.agents.registry import load_agent
    from potsearch.llm.client import LOCAL_MODEL, LLMClient
    from potsearch.agents.local import compile_grammar, load_llama
    from potsearch.collector import CollectConfig, collect

    tmp = Path(tempfile.mkdtemp(prefix="pscb"))
    run = tmp / "local"
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    t_ray = time.perf_counter() - t0
    try:
        res = collect(CollectConfig(agent=agent_name, provider="local", mode=mode, run=str(run), max_samples=n,
                                    samples_per_state=n if mode == "free" else 10, workers=1, progress=False, timeout=300))
    finally:
        ray.shutdown()
    ours = res.summary
    ours_sps = res.new_samples / res.seconds
    ours_tps = (ours["tokens_out"]) / res.seconds

    prompts, conf = _replay_prompts(run)
    agent = load_agent(agent_name)
    grammar = agent.grammar(mode) if mode == "constrained" else None
    temp, max_tokens = conf["decoding"]["temperature"], conf["decoding"]["max_tokens"]
    llm = load_llama(n_threads=1)
    g = compile_grammar(grammar) if grammar else None
    msgs = [agent.messages(text) for text, _ in prompts]
    llm.create_chat_completion(msgs[0], max_tokens=2, temperature=temp, grammar=g)  # warm
    t0 = time.perf_counter()
    raw_tok = 0
    for m, (_, seed) in zip(msgs, prompts):
        out = llm.create_chat_completion(m, max_tokens=max_tokens, temperature=temp, grammar=g, seed=seed)
        raw_tok += out["usage"]["completion_tokens"]
    raw_s = time.perf_counter() - t0

    client = LLMClient(LOCAL_MODEL, timeout=300, temperature=temp, max_tokens=max_tokens)

    async def through_litellm():
        tok = 0
        for m, (_, seed) in zip(msgs, prompts):
            r = await client.complete(m, grammar=grammar, seed=seed)
            tok += r.tokens_out
        return tok

    t0 = time.perf_counter()
    lit_tok = asyncio.run(through_litellm())
    lit_s = time.perf_counter() - t0
    k = len(prompts)
    return {
        "agent": agent_name, "mode": mode, "samples": k, "ray_init_s": t_ray,
        "raw_sps": k / raw_s, "raw_tps": raw_tok / raw_s,
        "litellm_sps": k / lit_s, "litellm_tps": lit_tok / lit_s,
        "collect_sps": ours_sps, "collect_tps": ours_tps,
        "litellm_overhead_ms": (lit_s - raw_s) / k * 1000,
    }


def bench_server(n: int = 30, use_grammar: bool = True) -> dict | None:
    """The alternative to our in-process provider: llama-cpp-python's OpenAI-compatible HTTP server
    (one process, one thread), reached through litellm as ``openai/...`` with ``api_base``; beside raw
    in-process calls on the same prompts, seeds and grammar. Needs ``llama_cpp.server``'s extras."""
    import socket
    import subprocess
    import urllib.request

    try:
        import llama_cpp.server.app  # noqa: F401
    except Exception as exc:
        print(f"llama.cpp server skipped: {type(exc).__name__}: {exc}")
        return None
    from potsearch.agents.registry import load_agent
    from potsearch.llm.client import LLMClient
    from potsearch.agents.local import compile_grammar, load_llama, model_path

    with socket.socket() as sck:
        sck.bind(("127.0.0.1", 0))
        port = sck.getsockname()[1]
    code = ("from potsearch.agents.local import _safe_default_params; _safe_default_params(); "
            "import runpy, sys; sys.argv = ['llama_cpp.server'] + sys.argv[1:]; "
            "runpy.run_module('llama_cpp.server', run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-c", code, "--model", str(model_path()), "--n_threads", "1",
                             "--n_ctx", "1024", "--port", str(port), "--host", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except Exception:
                time.sleep(0.2)
        agent = load_agent("word")
        grammar = agent.grammar("constrained") if use_grammar else None
        words = agent.words[:n]
        msgs = [agent.messages(w) for w in words]
        client = LLMClient("openai/smollm2", api_base=f"http://127.0.0.1:{port}/v1", timeout=120, max_tokens=16)
        os.environ.setdefault("OPENAI_API_KEY", "none")

        async def via_server():
            for i, m in enumerate(msgs):
                r = await client.complete(m, grammar=grammar, seed=i)
                if r.error:
                    raise RuntimeError(r.error)

        asyncio.run(via_server())  # warm (grammar, cache)
        t0 = time.perf_counter()
        asyncio.run(via_server())
        t_server = (time.perf_counter() - t0) / n
        llm = load_llama(n_threads=1)
        g = compile_grammar(grammar) if grammar else None
        for rep in range(2):  # second pass timed, like the server's
            t0 = time.perf_counter()
            for i, m in enumerate(msgs):
                llm.create_chat_completion(m, max_tokens=16, temperature=1.0, grammar=g, seed=i)
            t_raw = (time.perf_counter() - t0) / n
        return {"server_ms": t_server * 1000, "raw_ms": t_raw * 1000}
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def bench_litellm_overhead(calls: int = 300) -> dict:
    from potsearch.llm.client import LLMClient, get_litellm, register_provider

    litellm = get_litellm()

    class Instant(litellm.CustomLLM):
        async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response, *a, **kw):
            model_response.choices[0].message.content = "WIZARDS"
            model_response.usage = litellm.Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2)
            return model_response

    h = Instant()
    register_provider("bench-instant", h)
    client = LLMClient("bench-instant/x", timeout=10)
    msgs = [{"role": "user", "content": "hi"}]

    async def via():
        for _ in range(calls):
            await client.complete(msgs, grammar="root ::= \"A\"")

    async def direct():
        mr = litellm.ModelResponse()
        for _ in range(calls):
            await h.acompletion("x", msgs, None, {}, mr)

    asyncio.run(via())  # warm
    t0 = time.perf_counter()
    asyncio.run(via())
    t_via = (time.perf_counter() - t0) / calls
    t0 = time.perf_counter()
    asyncio.run(direct())
    t_direct = (time.perf_counter() - t0) / calls
    return {"litellm_ms_per_call": t_via * 1000, "direct_ms_per_call": t_direct * 1000}


def bench_surrogate(total: int, workers: int = 2, batch: int = 2000) -> dict:
    import ray

    from potsearch.collector import CollectConfig, collect

    tmp = Path(tempfile.mkdtemp(prefix="pscb"))
    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        res = collect(CollectConfig(agent="word", provider="surrogate", run=str(tmp / "sur"), max_samples=total,
                                    samples_per_state=max(1, total // 700 + 1), workers=workers, progress=False,
                                    batch_size=batch))
        ours = res.new_samples / res.seconds

        @ray.remote(num_cpus=0)
        class Echo:
            def run(self, keys, batch_no):
                return [(None, None, "x", None)] * len(keys)

        actors = [Echo.remote() for _ in range(workers)]
        ray.get([a.run.remote([], 0) for a in actors])
        keys = ["WIZARDS"] * batch
        t0 = time.perf_counter()
        inflight = []
        done = 0
        calls = 0
        while done < total:
            while len(inflight) < 2 * workers and calls * batch < total:
                inflight.append(actors[calls % workers].run.remote(keys, calls))
                calls += 1
            ready, inflight = ray.wait(inflight, num_returns=1)
            done += len(ray.get(ready[0]))
        bare = done / (time.perf_counter() - t0)
    finally:
        ray.shutdown()
    return {"samples": total, "collect_sps": ours, "bare_ray_sps": bare}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="local-model samples per (agent, mode)")
    ap.add_argument("--agents", default="word", help="comma list of agents for the local benchmark")
    ap.add_argument("--modes", default="constrained", help="comma list of decoding modes")
    ap.add_argument("--surrogate-samples", type=int, default=60000)
    ap.add_argument("--skip-local", action="store_true")
    ap.add_argument("--server", action="store_true", help="also measure the llama.cpp HTTP server alternative")
    a = ap.parse_args(argv)

    o = bench_litellm_overhead()
    print(f"litellm custom-provider overhead: {o['litellm_ms_per_call']:.2f} ms/call "
          f"(direct handler call {o['direct_ms_per_call']:.3f} ms)")
    emit("collect", "litellm custom-provider overhead per call", o["litellm_ms_per_call"], o["direct_ms_per_call"],
         None, "small vs a model call (~150-700 ms)", o["litellm_ms_per_call"] < 10, "ms")
    s = bench_surrogate(a.surrogate_samples)
    print(f"surrogate: collect {s['collect_sps']:,.0f} samples/s  |  bare Ray calls {s['bare_ray_sps']:,.0f} samples/s"
          f"  |  ratio {s['collect_sps'] / s['bare_ray_sps']:.2f}  (goal >= 2,000 samples/s)")
    emit("collect", "surrogate samples/s (2 workers, store writes) vs bare Ray echo calls", s["collect_sps"],
         s["bare_ray_sps"], s["collect_sps"] / s["bare_ray_sps"], ">= 2,000 samples/s", s["collect_sps"] >= 2000,
         "samples/s")
    if not a.skip_local:
        from potsearch.agents.local import llama_available

        why = llama_available()
        if why:
            print(f"local model skipped: {why}")
        else:
            for agent in a.agents.split(","):
                for mode in a.modes.split(","):
                    r = bench_local(a.n, mode, agent)
                    print(f"local {agent}/{mode} ({r['samples']} samples, same prompts+seeds, 1 thread):")
                    print(f"  raw llama-cpp  {r['raw_sps']:6.2f} samples/s {r['raw_tps']:7.1f} tokens/s")
                    print(f"  via litellm    {r['litellm_sps']:6.2f} samples/s {r['litellm_tps']:7.1f} tokens/s"
                          f"  ratio {r['litellm_sps'] / r['raw_sps']:.2f}  ({r['litellm_overhead_ms']:+.1f} ms/call)")
                    emit("collect", f"local {agent}/{mode}: collect samples/s vs raw llama-cpp (same prompts)",
                         r["collect_sps"], r["raw_sps"], r["collect_sps"] / r["raw_sps"], ">= 0.80 of raw",
                         r["collect_sps"] / r["raw_sps"] >= 0.8, "samples/s")
                    print(f"  collect (Ray)  {r['collect_sps']:6.2f} samples/s {r['collect_tps']:7.1f} tokens/s"
                          f"  ratio {r['collect_sps'] / r['raw_sps']:.2f}  (goal >= 0.80; ray.init {r['ray_init_s']:.1f}s"
                          f" not counted)")
    if a.server:
        for use in (True, False):
            r = bench_server(use_grammar=use)
            if r:
                print(f"llama.cpp server via litellm ({'word grammar' if use else 'no grammar'}): "
                      f"{r['server_ms']:.1f} ms/sample  |  raw in-process {r['raw_ms']:.1f} ms/sample  |  "
                      f"overhead {r['server_ms'] - r['raw_ms']:+.1f} ms/call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
