"""The embedded tiny VLM: scenes, learning above chance, attention semantics, checkpoint round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from safety_kit.pip import scenes as sc
from safety_kit.pip.tiny_vlm import TinyVLMConfig, encode, load_tiny_vlm, save_tiny_vlm, train_tiny_vlm
from shared.errors import DataError


def test_scenes_keep_probe_objects_absent_and_answers_consistent():
    scenes = sc.generate_scenes(200, seed=3)
    assert all(pair not in s.objects for s in scenes for pair in sc.PROBE_EXCLUDED)
    images, questions, answers = sc.make_qa(scenes, seed=3)
    assert images.shape == (200, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    for scene, q, a in zip(scenes, questions, answers):
        word = sc.VOCAB[a]
        if q.startswith("how many"):
            assert word == sc.COUNT_WORDS[len(scene.objects) - 1]
        elif q.startswith("is there"):
            colour, shape = q.split()[3:5]
            assert (word == "yes") == ((colour, shape) in scene.objects)
    assert sc.generate_scenes(3, seed=9)[0].image.tobytes() == sc.generate_scenes(3, seed=9)[0].image.tobytes()


def test_trains_above_chance(tiny_vlm):
    """The quick model beats the best constant answer per question type by a clear margin."""
    model, info = tiny_vlm
    from safety_kit.pip.tiny_vlm import evaluate_vqa

    scenes = sc.generate_scenes(600, seed=99)
    _, questions, answers = sc.make_qa(scenes, seed=99)
    kinds = np.array([q.split()[0] for q in questions])
    majority = sum(np.bincount(answers[kinds == k]).max() for k in np.unique(kinds)) / len(answers)
    accuracy = evaluate_vqa(model, n=600, seed=99)["vqa_accuracy"]
    assert accuracy > majority + 0.1, (accuracy, majority)


def test_training_loss_decreases_and_divergence_is_reported(monkeypatch):
    torch.set_num_threads(1)
    model, info = train_tiny_vlm(TinyVLMConfig(train_steps=20, train_scenes=150), show_progress=False)
    assert info["final_loss"] < np.log(len(sc.VOCAB)) - 0.5  # well below the uniform guess over the vocabulary
    import safety_kit.pip.tiny_vlm as tv
    from shared.errors import TrainingDivergedError

    monkeypatch.setattr(tv.F, "cross_entropy", lambda logits, target: logits.sum() * float("nan"))
    with pytest.raises(TrainingDivergedError, match="step 0"):
        train_tiny_vlm(TinyVLMConfig(train_steps=3, train_scenes=50), show_progress=False)


def test_probe_attention_is_the_first_answer_tokens_row(tiny_vlm):
    model, _ = tiny_vlm
    images = torch.from_numpy(sc.make_qa(sc.generate_scenes(4, seed=1), seed=1)[0])
    ids = encode(sc.DEFAULT_PROBES[0], 4)
    with torch.no_grad():
        feats = model.probe_attention(images, ids, step=1)
        full = model.probe_attention(images, ids, step=1, keys="all")
        y1 = model.answer_logits(images, ids).argmax(-1)
        _, attentions = model.decode(images, ids, y1)
    c = model.config
    assert feats.shape == (4, c.text_layers, c.text_heads, c.num_query_tokens)
    torch.testing.assert_close(full.sum(-1), torch.ones(4, c.text_layers, c.text_heads))  # a full softmax row
    rows = torch.stack([a[:, :, -1, : c.num_query_tokens] for a in attentions], 1)  # (B, L, H, K)
    torch.testing.assert_close(feats, rows)
    # left padding: pad keys get zero attention
    pad_keys = int((encode(sc.DEFAULT_PROBES[0]) == sc.PAD).sum())
    assert pad_keys == c.max_question_tokens - len(sc.tokenize(sc.DEFAULT_PROBES[0]))
    question_part = full[..., c.num_query_tokens:c.num_query_tokens + pad_keys]
    assert torch.all(question_part == 0)


def test_checkpoint_round_trip_and_corrupt_file(tiny_vlm, tmp_path):
    model, info = tiny_vlm
    path = save_tiny_vlm(model, info, tmp_path / "vlm.pt")
    loaded, loaded_info = load_tiny_vlm(path)
    x = torch.rand(2, 3, 32, 32)
    ids = encode("how many shapes ?", 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.answer_logits(x, ids), model.answer_logits(x, ids))
    assert loaded_info == info
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a tiny VLM checkpoint"):
        load_tiny_vlm(tmp_path / "bad.pt")
    with pytest.raises(DataError, match="does not exist"):
        load_tiny_vlm(tmp_path / "missing.pt")
