"""litellm, imported once: the environment it needs, and potsearch's custom providers.

This is the one place that sets ``LITELLM_LOCAL_MODEL_COST_MAP`` (the bundled price map: no
network at import) and registers providers (``register_provider``); the local SmolLM2 provider
(``potsearch.agents.local``) registers itself through it.
"""
from __future__ import annotations

import os

LOCAL_PROVIDER = "potsearch-local"
LOCAL_MODEL = f"{LOCAL_PROVIDER}/smollm2-135m-instruct"

_litellm = None


def litellm_environment() -> None:
    """The environment litellm must see before its import: offline price map, quiet log."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("LITELLM_LOG", "ERROR")


def get_litellm():
    """Import litellm once, offline (bundled cost map), quiet."""
    global _litellm
    if _litellm is None:
        litellm_environment()
        import litellm

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        litellm.drop_params = False
        _litellm = litellm
    return _litellm


def register_provider(name: str, handler) -> None:
    """Register (or replace) a litellm custom provider ``name`` (a litellm.CustomLLM instance)."""
    litellm = get_litellm()
    litellm.custom_provider_map = [p for p in litellm.custom_provider_map if p["provider"] != name]
    litellm.custom_provider_map.append({"provider": name, "custom_handler": handler})
    try:
        from litellm.utils import custom_llm_setup

        custom_llm_setup()
    except Exception:  # pragma: no cover - older/newer litellm: registration happens on first call
        pass
