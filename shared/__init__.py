"""Utilities every paperkits kit uses: seeding, data paths, config, progress, results and the report.

Nothing here is paper-specific, and nothing here imports a kit (kits are found through entry points).
"""

from shared.errors import ConfigError, DataError, PaperkitsError, TrainingDivergedError

__all__ = ["PaperkitsError", "DataError", "ConfigError", "TrainingDivergedError"]
