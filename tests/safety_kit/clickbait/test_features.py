import numpy as np
import pytest

from safety_kit.clickbait.synthetic import make_thumbnail
from safety_kit.features.cross_modal import CrossModalAgreement
from safety_kit.features.image import STAT_NAMES, ImageFeatures
from safety_kit.features.linguistic import FEATURE_NAMES, LinguisticFeatures
from safety_kit.features.text import LexicalEmbedder, SentenceEmbedder
from shared.errors import DataError


def col(name):
    return FEATURE_NAMES.index(name)


def test_linguistic_cues_known_answers():
    feats = LinguisticFeatures(log_counts=False).fit_transform(
        ["17 Things You Won't Believe Happened", "Senate passes budget bill", "Can you guess why?!"])
    assert feats.shape == (3, len(FEATURE_NAMES))
    assert feats[0, col("starts_with_number")] == 1 and feats[1, col("starts_with_number")] == 0
    assert feats[0, col("second_person")] > 0 and feats[1, col("second_person")] == 0
    assert feats[2, col("question_marks")] == 1 and feats[2, col("exclamation_marks")] == 1
    assert feats[1, col("n_words")] == 4


def test_linguistic_description_disparity():
    pairs = np.array([["You won't believe this", "You won't believe this"], ["You won't believe this", ""]],
                     dtype=object)
    feats = LinguisticFeatures().fit_transform(pairs)
    assert feats[0, col("desc_word_overlap")] == pytest.approx(1.0)
    assert feats[1, col("desc_present")] == 0 and feats[0, col("desc_present")] == 1


def test_image_stats_separate_thumbnail_styles(tmp_path):
    rng = np.random.default_rng(0)
    news = ImageFeatures().fit_transform([make_thumbnail("newsroom", rng) for _ in range(20)])
    viral = ImageFeatures().fit_transform([make_thumbnail("viral", rng) for _ in range(20)])
    sat = STAT_NAMES.index("sat_mean")
    assert viral[:, sat].min() > news[:, sat].max()  # viral thumbnails are saturated, newsroom ones muted
    assert (news[:, -1] == 1).all()  # image_present


def test_image_missing_policy(tmp_path):
    from PIL import Image

    good = tmp_path / "a.png"
    Image.fromarray(make_thumbnail("viral", np.random.default_rng(0))).save(good)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    items = [str(good), None, str(tmp_path / "missing.jpg"), str(bad)]
    with pytest.raises(DataError, match="row 1"):
        ImageFeatures(on_missing="raise").fit_transform(items)
    with pytest.warns(UserWarning, match="3 of 4 rows"):
        feats = ImageFeatures(on_missing="zeros").fit_transform(items)
    assert feats[:, -1].tolist() == [1, 0, 0, 0] and np.all(feats[1:] == 0)


def test_cross_modal_learns_alignment():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(200, 6))
    W = rng.normal(size=(6, 4))
    B = A @ W + 0.01 * rng.normal(size=(200, 4))  # image features are a linear view of the text
    out = CrossModalAgreement(split=6, projection="ridge", alpha=1e-3).fit_transform(np.hstack([A, B]))
    assert out[:, 0].mean() > 0.6  # B -> A is not invertible (4 < 6), yet agreement is high
    shuffled = CrossModalAgreement(split=6, alpha=1e-3).fit(np.hstack([A, B])).transform(np.hstack([A, B[::-1]]))
    assert shuffled[:, 0].mean() < out[:, 0].mean() - 0.4  # mismatched pairs disagree
    same = CrossModalAgreement(split=6, projection="none").fit_transform(np.hstack([A, A]))
    assert np.allclose(same[:, 0], 1.0, atol=1e-5)


def test_lexical_embedder_shapes():
    texts = ["you won't believe this", "senate passes bill", "17 things you need", "court hears appeal"] * 5
    emb = LexicalEmbedder(n_components=3).fit_transform(texts)
    assert emb.shape == (20, 3) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)


def test_minilm_embeddings_offline_and_cached(isolated_cache, monkeypatch):
    emb = SentenceEmbedder().fit(["x"])
    texts = ["The senate passed the budget bill", "Lawmakers approved the spending plan",
             "You won't believe what this cat did"]
    vecs = emb.transform(texts)
    assert vecs.shape == (3, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]  # paraphrases are closer than unrelated headlines
    assert list(isolated_cache.rglob("shard-*.npz"))
    from safety_kit.features import text as text_mod

    text_mod._EmbeddingStore._open.clear()  # a new process: only the disk cache remains
    monkeypatch.setattr(SentenceEmbedder, "_encoder", lambda self: pytest.fail("cache miss: encoder was called"))
    assert np.allclose(emb.transform(texts[::-1]), vecs[::-1])
