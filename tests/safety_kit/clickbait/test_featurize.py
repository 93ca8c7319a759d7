import numpy as np
import pytest

from safety_kit.clickbait.data import Posts
from safety_kit.clickbait.featurize import PostFeaturizer
from safety_kit.clickbait.synthetic import make_thumbnail
from shared.errors import DataError


def posts_with_images(n, rng, images=None):
    texts = [f"headline number {i} you won't believe" if i % 2 else f"senate passes bill {i}" for i in range(n)]
    return Posts(texts=texts, descriptions=["calm description"] * n,
                 images=images or [make_thumbnail("viral" if i % 2 else "newsroom", rng) for i in range(n)],
                 labels=np.arange(n) % 2)


def test_groups_layout_and_missing_image_policy(tmp_path):
    rng = np.random.default_rng(0)
    featurizer = PostFeaturizer(text_model="lexical")
    X = featurizer.fit_transform(posts_with_images(30, rng))
    names = [g for g, _, _ in featurizer.group_slices()]
    assert names == ["headline", "headline_tfidf", "description", "linguistic", "image", "cross_modal"]
    assert X.shape[1] == featurizer.group_slices()[-1][2] and np.isfinite(X).all()
    # a post whose image path does not exist: zero image features + image_present = 0, with a warning
    new = posts_with_images(3, rng, images=[make_thumbnail("viral", rng), str(tmp_path / "gone.jpg"), None])
    with pytest.warns(UserWarning, match="2 of 3 rows"):
        Xn = featurizer.transform(new)
    a, b = featurizer.feature_groups_["image"]
    assert Xn[0, b - 1] == 1 and Xn[1, b - 1] == 0 and np.all(Xn[1, a:b] == 0)
    featurizer.image_.set_params(on_missing="raise")  # the other policy: fail, naming the row
    with pytest.raises(DataError, match="row 1: image file .*gone.jpg does not exist"):
        featurizer.transform(new)


def test_headline_only_corpus_drops_absent_groups():
    featurizer = PostFeaturizer(text_model="lexical")
    featurizer.fit_transform(["you won't believe this", "senate passes bill", "17 things", "court rules"])
    assert [g for g, _, _ in featurizer.group_slices()] == ["headline", "headline_tfidf", "linguistic"]


def test_tfidf_group_carries_the_exact_ngrams_and_can_be_switched_off():
    texts = ["you won't believe this", "senate passes bill", "you won't believe that", "senate passes budget"]
    featurizer = PostFeaturizer(text_model="lexical", tfidf_max_features=50)
    X = featurizer.fit_transform(texts)
    a, b = featurizer.feature_groups_["headline_tfidf"]
    names = list(featurizer.tfidf_.get_feature_names_out())
    assert "tfidf_won believe" in names and b - a == len(names) <= 50
    col = a + names.index("tfidf_won believe")
    assert (X[:, col] > 0).tolist() == [True, False, True, False]
    off = PostFeaturizer(text_model="lexical", tfidf_max_features=0).fit(texts)
    assert "headline_tfidf" not in off.feature_groups_
