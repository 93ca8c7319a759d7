"""Data loaders and converters shared by recsys_kit papers (one module per format)."""
