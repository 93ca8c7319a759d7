"""Every notebook in examples/ executes top to bottom (they call the kits' APIs at the quick profile).

The notebooks run two at a time (each in its own kernel process and folder), one per core: the suite's slowest
part, halved; each notebook's own test then reads its outcome.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.ipynb"))


def _execute(path: Path, folder: Path) -> list:
    import nbclient
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    try:
        client.execute(env={**os.environ, "PAPERKITS_RESULTS": str(folder / "results")})
    except Exception as err:  # a failing cell: report it as this notebook's error, not the whole fixture's
        return [repr(err)]
    return [out for cell in notebook.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


@pytest.fixture(scope="session")
def notebook_errors(tmp_path_factory):
    pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    root = tmp_path_factory.mktemp("notebooks")
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        futures = {p.stem: pool.submit(_execute, p, root / p.stem) for p in NOTEBOOKS}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, notebook_errors):
    errors = notebook_errors[path.stem]
    assert not errors, errors
