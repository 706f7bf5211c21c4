"""TEST INSTRUMENT — a stand-in OpenAI-compatible chat model on 127.0.0.1, for benchmarks and tests.

Not part of any search: it answers ``POST /v1/chat/completions`` after a lognormal delay with a
valid candidate potential (a random linear combination of the feature names it was given), so the
search's model path (litellm → HTTP → reply extraction → allowlist → sandbox) can be measured without
a network or an API key. Reach it through litellm with ``model="openai/standin"``,
``api_base=server.api_base`` and any api key.

Bounded: it binds 127.0.0.1 only, on an ephemeral port, and shuts itself down after ``lifetime``
seconds (or on ``close()`` / leaving the ``with`` block). Optional fault modes, drawn per request
with the given probabilities: ``fail`` (HTTP 500), ``hang`` (no answer until the server closes),
``hostile`` (a reply whose code imports ``os``). It records the number of requests being served
over time (``inflight_samples``: (seconds since start, requests in flight) at every change), the
model-side view of the client's concurrency.

    with StandinServer(median=3.0, sigma=0.5, seed=0) as srv:
        litellm.completion(model="openai/standin", api_base=srv.api_base, api_key="x", messages=[...])
"""
from __future__ import annotations

import json
import math
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_FEATURES = ("vowels", "zipf", "length")
WORD_V = 0.6     # word mode's hidden potential: V(word) = WORD_V * vowels(word)
FUNCS = ("np.log1p({})", "np.sqrt({})", "np.tanh({})", "{}", "{}")


class StandinServer:
    def __init__(self, median: float = 3.0, sigma: float = 0.5, seed: int = 0, features=DEFAULT_FEATURES,
                 fail: float = 0.0, hang: float = 0.0, hostile: float = 0.0, lifetime: float = 600.0,
                 mode: str = "formula", port: int = 0):
        if mode not in ("formula", "word"):
            raise ValueError(f"unknown stand-in mode {mode!r} (formula or word)")
        self.mode = mode
        self._words = WordMode(seed) if mode == "word" else None
        self.median, self.sigma = float(median), float(sigma)
        self.features = tuple(features) or DEFAULT_FEATURES
        self.fail, self.hang, self.hostile = float(fail), float(hang), float(hostile)
        self.lifetime = float(lifetime)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.inflight = 0
        self.max_inflight = 0
        self.requests = 0
        self.inflight_samples: list[tuple[float, int]] = []
        self.t0 = time.monotonic()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(n) or b"{}")
                except ValueError:
                    body = {}
                outer.serve(self, body)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client cut at its timeout: not an error here
                pass

        self._httpd = Server(("127.0.0.1", int(port)), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.api_base = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="standin-server", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self.close)
        self._timer.daemon = True
        self._timer.start()

    # -------------------------------------------------------------------------------- replies
    def _draw(self) -> tuple[float, str]:
        with self._lock:
            r = self._rng
            delay = self.median * math.exp(self.sigma * r.gauss(0.0, 1.0))
            u = r.random()
            if u < self.fail:
                kind = "fail"
            elif u < self.fail + self.hang:
                kind = "hang"
            elif u < self.fail + self.hang + self.hostile:
                kind = "hostile"
            else:
                kind = "ok"
            k = r.randint(1, min(3, len(self.features)))
            feats = r.sample(self.features, k)
            terms = [f"p[{i}] * " + r.choice(FUNCS).format(f'x["{f}"]') for i, f in enumerate(feats)]
        code = f"N_PARAMS = {k + 1}\ndef potential(x, p):\n    return " + " + ".join(terms) + f" + p[{k}]\n"
        if kind == "hostile":
            code = "import os\nN_PARAMS = 1\ndef potential(x, p):\n    return p[0] * len(os.listdir('/'))\n"
        return delay, kind, f"Here is a formula:\n```python\n{code}```\n"

    def _track(self, d: int) -> None:
        with self._lock:
            self.inflight += d
            self.max_inflight = max(self.max_inflight, self.inflight)
            self.inflight_samples.append((time.monotonic() - self.t0, self.inflight))
            if d > 0:
                self.requests += 1

    def serve(self, h: BaseHTTPRequestHandler, body: dict) -> None:
        """Answer one request (the handler's POST)."""
        delay, kind, text = self._draw()
        if self._words is not None and kind == "ok":
            with self._lock:
                text = self._words.reply(body.get("messages") or [], self._rng)
        self._track(+1)
        try:
            if kind == "hang":
                self._closing.wait(self.lifetime)
                return
            if self._closing.wait(delay):
                return
            if kind == "fail":
                self._send(h, 500, {"error": {"message": "stand-in failure", "type": "server_error"}})
                return
            ptoks = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
            ctoks = len(text) // 4
            self._send(h, 200, {
                "id": f"standin-{self.requests}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "standin"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": ptoks, "completion_tokens": ctoks, "total_tokens": ptoks + ctoks}})
        except OSError:  # the client went away (cut at its timeout)
            pass
        finally:
            self._track(-1)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, code: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    # -------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        if self._closing.is_set():
            return
        self._closing.set()
        self._timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()

    def wait(self) -> None:
        """Block until the server's lifetime ends (or close())."""
        self._timer.join()

    def __enter__(self) -> "StandinServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WordMode:
    """Word mode: answers the word agent's prompt like an agent with a known potential. The source word is
    read from the prompt (``WORD(1+2+...=100)``); a neighbour in the shipped word list (up to 4 places
    either side) is proposed and accepted with probability min(1, exp(V(source) - V(target))) where
    V = WORD_V x vowels; a rejected proposal answers the source word again; 5 % of replies are prose
    (an escape). Detailed balance holds by construction, so a rehearsal's fit can be checked against V."""

    def __init__(self, seed: int):
        from potsearch.agents.data import load_word_list

        self.words = load_word_list().words
        self.index = {w: i for i, w in enumerate(self.words)}

    @staticmethod
    def potential(word: str) -> float:
        return WORD_V * sum(c in "AEIOU" for c in word)

    def reply(self, messages: list, rng: random.Random) -> str:
        import re

        text = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        found = [w for w in re.findall(r"\b([A-Z]+)\(", text) if w in self.index]
        if not found or rng.random() < 0.05:
            return "I am not sure which word you mean."
        src = found[-1]
        i = self.index[src]
        j = min(max(i + rng.choice((-4, -3, -2, -1, 1, 2, 3, 4)), 0), len(self.words) - 1)
        tgt = self.words[j]
        accept = rng.random() < math.exp(min(0.0, self.potential(src) - self.potential(tgt)))
        return tgt if accept and tgt != src else src


def main(argv: list[str] | None = None) -> int:
    """``python -m potsearch.testing.standin_server``: serve until Ctrl-C (or --lifetime seconds)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m potsearch.testing.standin_server",
                                 description="TEST INSTRUMENT: a stand-in OpenAI-compatible model on 127.0.0.1, to "
                                             "rehearse the paid-model path offline (no model behind it).")
    ap.add_argument("--mode", choices=["formula", "word"], default="word",
                    help="word: answer the word agent's prompt (hidden V = 0.6 x vowels); formula: answer "
                         "evolve's model operator with a candidate potential")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    ap.add_argument("--median", type=float, default=0.05, help="median reply delay in seconds")
    ap.add_argument("--sigma", type=float, default=0.5, help="lognormal spread of the delay")
    ap.add_argument("--fail", type=float, default=0.0, help="share of replies that are HTTP 500")
    ap.add_argument("--hang", type=float, default=0.0, help="share of requests never answered")
    ap.add_argument("--hostile", type=float, default=0.0, help="formula mode: share of hostile code replies")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=3600.0, help="seconds before it shuts itself down")
    a = ap.parse_args(argv)
    srv = StandinServer(median=a.median, sigma=a.sigma, seed=a.seed, fail=a.fail, hang=a.hang, hostile=a.hostile,
                        lifetime=a.lifetime, mode=a.mode, port=a.port)
    print(f"stand-in model ({a.mode} mode, TEST INSTRUMENT) at {srv.api_base}; any API key works, e.g.\n"
          f"  OPENAI_API_KEY=standin potsearch collect --agent word --provider openai/standin --mode free "
          f"--api-base {srv.api_base} --run runs/rehearsal --max-samples 400", flush=True)
    try:
        srv.wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
