"""The one door to language models (litellm, pinned; offline price map)."""
