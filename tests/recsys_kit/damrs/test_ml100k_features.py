import numpy as np

from recsys_kit.data.ml100k_features import (
    build_ml100k_features,
    genre_multi_hot,
    item_table,
    kg_features,
    title_texts,
)


def test_genre_and_titles_from_the_shipped_item_file():
    items = item_table()
    assert len(items) == 1682
    multi_hot, vocabulary = genre_multi_hot(items)
    assert multi_hot.shape == (1682, len(vocabulary))
    toy_story = items.index[items["item_id"] == "1"][0]
    assert {vocabulary[j] for j in np.nonzero(multi_hot[toy_story])[0]} == {"Animation", "Children's", "Comedy"}
    assert title_texts(items)[toy_story] == "Toy Story (1995)"


def test_kg_modality_uses_links_and_fills_unlinked_with_the_mean():
    tokens = list(item_table()["item_id"])
    features, linked = kg_features(tokens, dims=16)
    assert features.shape == (1682, 16) and 0.9 < linked < 1.0  # 1,598 of 1,682 items are linked
    assert np.isfinite(features).all() and features.std(axis=0).max() > 0


def test_build_is_cached_and_uses_the_given_encoder(isolated_cache):
    calls = []

    def fake_encoder(texts):
        calls.append(len(texts))
        return np.random.default_rng(0).normal(size=(len(texts), 4)).astype(np.float32)

    paths = build_ml100k_features(modalities=["text", "genre"], encoder=fake_encoder)
    assert str(paths["text"]).startswith(str(isolated_cache))
    assert np.load(paths["text"]).shape == (1682, 4) and calls == [1682]
    build_ml100k_features(modalities=["text", "genre"], encoder=fake_encoder)
    assert calls == [1682]  # second call reads the cache
    assert paths["tokens"].read_text().split()[:2] == ["1", "2"]
