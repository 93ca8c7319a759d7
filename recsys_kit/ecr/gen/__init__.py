"""Emotion-aligned response generation: review/KG retrieval into the four-part prompt, fine-tuning, metrics, judge."""
