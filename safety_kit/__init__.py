"""safety_kit: detectors as scikit-learn estimators over torch features."""
