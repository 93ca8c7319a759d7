import pytest

from shared.errors import DataError
from shared.paths import cache_dir, data_root, has_data, require_data


def test_require_data_resolves_under_env(tmp_path, monkeypatch):
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("hi")
    monkeypatch.setenv("PAPERKITS_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert require_data("text/a.txt") == tmp_path / "text" / "a.txt"
    assert has_data("text/a.txt") and not has_data("text/b.txt")


def test_require_data_errors_name_variable_and_file(tmp_path, monkeypatch):
    monkeypatch.delenv("PAPERKITS_DATA", raising=False)
    with pytest.raises(DataError, match="PAPERKITS_DATA.*text/a.txt|text/a.txt.*PAPERKITS_DATA"):
        require_data("text/a.txt")
    assert not has_data("text/a.txt")
    monkeypatch.setenv("PAPERKITS_DATA", str(tmp_path))
    with pytest.raises(DataError, match="expected 'text/missing.txt'"):
        require_data("text/missing.txt")
    monkeypatch.setenv("PAPERKITS_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="is not a directory"):
        data_root()


def test_cache_dir_honours_env(isolated_cache):
    path = cache_dir("llm", "tokenizers")
    assert path.is_dir() and path.parent.parent == isolated_cache
