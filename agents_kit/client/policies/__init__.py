"""Decision policies: the points where the original called an LLM (brief §8.4)."""
