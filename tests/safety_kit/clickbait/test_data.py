import gzip
import json

import numpy as np
import pytest

from safety_kit.clickbait.data import (
    Posts,
    load_chakraborty,
    load_headline_corpus,
    load_posts,
    load_table,
    load_webis17,
)
from shared.errors import DataError


def test_headline_lines_with_blank_separators(tmp_path):
    bait, news = tmp_path / "b.gz", tmp_path / "n.txt"
    with gzip.open(bait, "wt") as handle:
        handle.write("You won't believe this\n\n17 things\n\n")
    news.write_text("Senate passes bill\n\nCourt hears appeal\n\nMarkets fall\n")
    posts = load_headline_corpus(bait, news)
    assert posts.texts[:2] == ["You won't believe this", "17 things"] and posts.labels.tolist() == [1, 1, 0, 0, 0]


def test_table_csv_and_jsonl_with_error_policy(tmp_path):
    csv_path = tmp_path / "posts.csv"
    csv_path.write_text("id,text,label,image\na,You won't believe it,clickbait,img/a.png\nb,,0,\nc,Senate passes bill,0,\n")
    with pytest.raises(DataError, match="row 1 has no text"):
        load_table(csv_path)
    with pytest.warns(UserWarning, match="skipped 1 of 3"):
        posts = load_table(csv_path, on_error="skip")
    assert posts.labels.tolist() == [1, 0] and posts.ids == ["a", "c"]
    assert posts.images[0] == str(tmp_path / "img/a.png") and posts.images[1] is None
    jsonl = tmp_path / "posts.jsonl"
    jsonl.write_text(json.dumps({"text": "x", "label": True}) + "\n" + "{broken\n")
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        load_table(jsonl)
    jsonl.write_text(json.dumps({"text": "x", "label": "maybe"}) + "\n")
    with pytest.raises(DataError, match="cannot read label"):
        load_table(jsonl)
    with pytest.raises(DataError, match="no 'truth' column"):
        load_table(tmp_path / "posts.csv", label="truth")
    with pytest.raises(DataError, match="does not exist"):
        load_posts(tmp_path / "nope.csv")


def test_webis17_folder(tmp_path):
    from PIL import Image

    (tmp_path / "media").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "media" / "p1.png")
    inst = [{"id": "1", "postText": ["You won't believe this"], "postMedia": ["media/p1.png"],
             "postTimestamp": "Thu Mar 16 15:58:02 +0000 2017", "targetTitle": "t", "targetDescription": "calm text"},
            {"id": "2", "postText": ["Senate passes bill"], "postMedia": [], "postTimestamp": "Fri Apr 07 10:00:00 +0000 2017",
             "targetTitle": "Senate", "targetDescription": ""}]
    truth = [{"id": "1", "truthMean": 0.8, "truthClass": "clickbait"},
             {"id": "2", "truthMean": 0.1, "truthClass": "no-clickbait"}]
    (tmp_path / "instances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in inst))
    (tmp_path / "truth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in truth))
    posts = load_webis17(tmp_path)
    assert posts.labels.tolist() == [1, 0] and posts.truth_mean.tolist() == [0.8, 0.1]
    assert posts.images[0].endswith("media/p1.png") and posts.images[1] is None
    assert posts.descriptions == ["calm text", "Senate"] and posts.groups == ["2017-Mar", "2017-Apr"]
    assert len(load_posts(tmp_path)) == 2


def test_posts_validation():
    with pytest.raises(DataError, match="empty"):
        Posts(texts=[])
    with pytest.raises(DataError, match="'labels' has 1 entries"):
        Posts(texts=["a", "b"], labels=np.array([1]))
    sub = Posts(texts=["a", "b", "c"], labels=np.array([1, 0, 1])).subset([2, 0])
    assert sub.texts == ["c", "a"] and sub.labels.tolist() == [1, 1]


def test_chakraborty_real_headlines(handbook_data):
    posts = load_chakraborty()
    assert len(posts) == 32000 and int(posts.labels.sum()) == 15999
    assert all(t.strip() for t in posts.texts[:100])
