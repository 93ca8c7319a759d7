"""Emotion-aware item recommendation: samples, co-occurrence, the RGCN prompt encoder, loss, metrics, training."""
