"""Feature extractors as scikit-learn transformers (fit/transform); import from the submodules."""
