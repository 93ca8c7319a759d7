"""Emotion annotation: a lexicon teacher, a focal-loss student classifier, and an LLM annotator hook."""
