"""HF adapters on tiny random-init configs (no downloads): feature shape, visual positions, attention semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from safety_kit.pip.adapters import (  # noqa: E402
    HFBlip2Adapter,
    HFInstructBlipAdapter,
    HFLlavaAdapter,
    ProbeAttentionExtractor,
    pool_tokens,
)
from shared.errors import ConfigError, DataError  # noqa: E402

IMAGE_TOKEN = 119
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32,
              patch_size=8, initializer_range=0.2)
QFORMER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
               encoder_hidden_size=32, vocab_size=120, initializer_range=0.2)
LLAMA = dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
             num_key_value_heads=4, vocab_size=120, max_position_embeddings=256, bos_token_id=1, eos_token_id=2,
             initializer_range=0.2)
OPT = dict(model_type="opt", hidden_size=32, num_hidden_layers=3, num_attention_heads=4, ffn_dim=64,
           vocab_size=120, word_embed_proj_dim=32, max_position_embeddings=256, bos_token_id=1, eos_token_id=2,
           init_std=0.2)
T5 = dict(model_type="t5", d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
          vocab_size=120, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)


def tiny_tokenizer():
    """A word-level fast tokenizer built in memory; ``<image>`` is the special token 119 (the HF processors' one)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<s>", "</s>", "<unk>", "Question:", "Short", "answer:", "Is", "there", "a", "clock?",
             "USER:", "ASSISTANT:", "is", "red", "star?"]
    vocab = {w: i for i, w in enumerate(words)} | {"<image>": IMAGE_TOKEN}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", bos_token="<s>")
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    assert tok.convert_tokens_to_ids("<image>") == IMAGE_TOKEN
    return tok


def _random_queries(model):
    """HF initialises the learned queries at zero; a trained model's are not, so give them values."""
    with torch.no_grad():
        model.query_tokens.normal_(0, 1)
    return model


def blip2(text=OPT):
    from transformers import Blip2Config, Blip2ForConditionalGeneration

    torch.manual_seed(0)
    config = Blip2Config(vision_config=VISION, qformer_config=QFORMER, text_config=text, num_query_tokens=32,
                         image_token_index=IMAGE_TOKEN)
    return _random_queries(Blip2ForConditionalGeneration(config))


def instructblip():
    from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration

    torch.manual_seed(0)
    config = InstructBlipConfig(vision_config=VISION, qformer_config=QFORMER, text_config=LLAMA,
                                num_query_tokens=32, image_token_index=IMAGE_TOKEN)
    return _random_queries(InstructBlipForConditionalGeneration(config))


def instructblip_t5():
    from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration

    torch.manual_seed(0)
    config = InstructBlipConfig(vision_config=VISION, qformer_config=QFORMER, text_config=T5,
                                num_query_tokens=32, image_token_index=IMAGE_TOKEN)
    return _random_queries(InstructBlipForConditionalGeneration(config))


def llava(tower="clip", strategy="default"):
    """LLaVA-1.5 layout (CLIP, "default": CLS dropped) or llava-interleave-qwen's (SigLIP, "full": no CLS)."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(0)
    vision = (dict(model_type="clip_vision_model", **VISION, projection_dim=32) if tower == "clip"
              else dict(model_type="siglip_vision_model", **VISION))
    config = LlavaConfig(vision_config=vision, text_config=LLAMA, image_token_index=IMAGE_TOKEN,
                         vision_feature_layer=-2 if tower == "clip" else -1, vision_feature_select_strategy=strategy)
    return LlavaForConditionalGeneration(config)


def image_processor(kind):
    """The checkpoint's image processor, built locally (the PIL variants need no torchvision)."""
    name = {"blip": "BlipImageProcessor", "clip": "CLIPImageProcessor", "siglip": "SiglipImageProcessor"}[kind]
    cls = getattr(transformers, name + "Pil", None) or getattr(transformers, name)
    if kind == "clip":
        return cls(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return cls(size={"height": 32, "width": 32})


def hf_processor(layout):
    """The HF processor of each layout (tokenizer + image processor constructed offline)."""
    tok = tiny_tokenizer()
    if layout.startswith("blip2"):
        return transformers.Blip2Processor(image_processor("blip"), tok, num_query_tokens=32)
    if layout.startswith("instructblip"):
        return transformers.InstructBlipProcessor(image_processor("blip"), tok, tiny_tokenizer(), num_query_tokens=32)
    tower, strategy = layout.split("-")[1:3]
    return transformers.LlavaProcessor(image_processor(tower), tok, patch_size=8,
                                       vision_feature_select_strategy=strategy,
                                       num_additional_image_tokens=1 if tower == "clip" else 0)


def images(n=2, size=40):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("build, adapter_cls, n_layers, n_visual", [
    (blip2, HFBlip2Adapter, 3, 32),
    (instructblip, HFInstructBlipAdapter, 3, 32),
    (llava, HFLlavaAdapter, 3, 16),
    (lambda: blip2(T5), HFBlip2Adapter, 2, 32),
], ids=["blip2-opt", "instructblip-llama", "llava-llama", "blip2-t5"])
def test_feature_shape_positions_and_attention_mass(build, adapter_cls, n_layers, n_visual):
    adapter = adapter_cls(build(), tiny_tokenizer())
    assert isinstance(adapter, ProbeAttentionExtractor)
    positions = adapter.visual_positions("Is there a clock?")
    assert len(positions) == n_visual
    ids = np.asarray(adapter.prompt_ids("Is there a clock?"))
    assert (ids[positions] == IMAGE_TOKEN).all() and (np.delete(ids, positions) != IMAGE_TOKEN).all()
    feats = adapter.extract(images(), "Is there a clock?")
    assert feats.shape == (2, n_layers, 4, n_visual) and feats.dtype == np.float32
    # softmax over all keys: the visual part of each row is a probability mass ≤ 1, strictly positive
    mass = feats.sum(-1)
    assert (feats > 0).all() and (mass <= 1 + 1e-5).all()
    if not adapter.encoder_decoder:  # other keys (text, BOS) hold the rest
        assert (mass < 1 - 1e-4).any()
    # different images give different features (the feature depends on the pixels)
    assert np.abs(feats[0] - feats[1]).max() > 1e-6


def test_step_one_matches_generate_attentions():
    """Our two-pass feature equals ``generate(..., output_attentions=True).attentions[1]`` (brief §2.2)."""
    model = blip2()
    adapter = HFBlip2Adapter(model, tiny_tokenizer())
    x = images(1)
    ours = adapter.extract(x, "Is there a clock?")[0]
    ids = torch.tensor([adapter.prompt_ids("Is there a clock?")])
    with torch.no_grad():
        out = model.generate(pixel_values=adapter.pixel_values(x), input_ids=ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=2, min_new_tokens=2, output_attentions=True,
                             return_dict_in_generate=True, do_sample=False)
    step1 = torch.stack([a[0, :, -1] for a in out.attentions[1]])  # (L, H, keys)
    np.testing.assert_allclose(ours, step1[..., adapter.visual_positions()].numpy(), atol=1e-5)


def test_llava_token_pool_and_errors():
    adapter = HFLlavaAdapter(llava(), tiny_tokenizer(), token_pool=2)
    assert adapter.extract(images(1), "Is there a clock?").shape == (1, 3, 4, 4)
    with pytest.raises(ConfigError):
        pool_tokens(torch.rand(2, 3, 15), 2)
    with pytest.raises(DataError):
        adapter.extract(torch.rand(1, 1, 32, 32), "Is there a clock?")
    with pytest.raises(DataError):
        adapter.extract(torch.rand(1, 3, 32, 32) * 255, "Is there a clock?")


def test_answer_logits_are_differentiable_in_pixels():
    adapter = HFInstructBlipAdapter(instructblip(), tiny_tokenizer())
    x = images(1).requires_grad_(True)
    adapter.answer_logits(x, "Is there a clock?")[0, 5].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_hf_backend_train_and_scan_end_to_end(tmp_path):
    """`train` on a local BLIP-2 checkpoint + an image folder, then `scan` through the saved bundle.

    Also the from_pretrained round trip: the adapter loaded from the directory gives the same features.
    """
    from PIL import Image

    from safety_kit.pip.detector_bundle import DetectorBundle, PIPTrainConfig, train_detector

    model, tok = blip2(), tiny_tokenizer()
    model.save_pretrained(tmp_path / "ckpt")
    tok.save_pretrained(tmp_path / "ckpt")
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"img{i}.png")
    config = PIPTrainConfig(backend="blip2", checkpoint=str(tmp_path / "ckpt"), images=str(tmp_path / "imgs"),
                            task_question="Is there a clock?", probes=["Is there a clock?"], steps=2)
    bundle, metrics = train_detector(config, tmp_path / "run")
    assert metrics["n_train"] == 8 and bundle.detector.n_features_in_ == 3 * 4 * 32
    np.testing.assert_allclose(bundle.extractor().extract(images(1), "Is there a clock?"),
                               HFBlip2Adapter(model, tok).extract(images(1), "Is there a clock?"), atol=1e-5)
    with pytest.raises(DataError):
        HFBlip2Adapter.from_pretrained(tmp_path / "missing")
    loaded = DetectorBundle.load(bundle.save(tmp_path / "run" / "detector.pkl"))
    results = list(loaded.scan([tmp_path / "imgs" / "img0.png", tmp_path / "missing.png"], resize=True))
    assert results[0]["verdict"] in ("adversarial", "clean") and results[1]["verdict"] == "error"
    with pytest.raises(DataError, match="holds no images"):
        train_detector(PIPTrainConfig(backend="blip2", checkpoint=str(tmp_path / "ckpt"),
                                      images=str(tmp_path / "ckpt")), tmp_path / "run2")


def test_answer_sequence_loss_alignments():
    """next_token scores the answer after the prompt; hf431 replicates the official off-by-one scoring."""
    model = blip2()
    adapter = HFBlip2Adapter(model, tiny_tokenizer())
    x, answer = images(2), [1, 14, 15]  # BOS + two answer tokens
    prompt = adapter.prompt_ids("Is there a clock?")
    ids = torch.tensor([prompt + answer] * 2)
    with torch.no_grad():
        logits = model(pixel_values=adapter.pixel_values(x), input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        manual = torch.stack([torch.nn.functional.cross_entropy(logits[i, len(prompt) - 1:-1], torch.tensor(answer))
                              for i in range(2)])
        ours = adapter.answer_sequence_loss(x, "Is there a clock?", answer)
        official = adapter.answer_sequence_loss(x, "Is there a clock?", answer, alignment="hf431")
    torch.testing.assert_close(ours, manual, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(ours, official)
    prompt_only = torch.tensor([prompt] * 2)
    with torch.no_grad():
        p_logits = model(pixel_values=adapter.pixel_values(x), input_ids=prompt_only).logits
        expected = torch.nn.functional.cross_entropy(p_logits[0, -3:-1], torch.tensor(answer[1:]))
    torch.testing.assert_close(official[0], expected, rtol=1e-4, atol=1e-5)
    t5 = HFBlip2Adapter(blip2(T5), tiny_tokenizer())
    x.requires_grad_(True)
    t5.answer_sequence_loss(x, "Is there a clock?", answer).sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(ConfigError):
        adapter.answer_sequence_loss(x, "q", answer, alignment="shifted")


LAYOUTS = {  # layout id: (model builder, adapter class, layers, visual tokens)
    "blip2-opt": (blip2, HFBlip2Adapter, 3, 32),
    "blip2-t5": (lambda: blip2(T5), HFBlip2Adapter, 2, 32),
    "instructblip-llama": (instructblip, HFInstructBlipAdapter, 3, 32),
    "instructblip-t5": (instructblip_t5, HFInstructBlipAdapter, 2, 32),
    "llava-clip-default": (llava, HFLlavaAdapter, 3, 16),
    "llava-clip-full": (lambda: llava("clip", "full"), HFLlavaAdapter, 3, 17),
    "llava-siglip-full": (lambda: llava("siglip", "full"), HFLlavaAdapter, 3, 16),  # llava-interleave-qwen
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_prompt_ids_and_pixels_match_the_hf_processor(layout):
    """Every layout: our ids equal the processor's (image tokens and text), our normalised pixels equal its
    pixel_values, the model accepts the prompt, and the feature has one column per image token."""
    build, adapter_cls, n_layers, n_visual = LAYOUTS[layout]
    model, processor = build(), hf_processor(layout)
    adapter = adapter_cls(model, tiny_tokenizer(), image_processor=processor.image_processor)
    question = "Is there a clock?"
    text = adapter.prompt_template.format(question)
    pil = (np.random.default_rng(0).random((32, 32, 3)) * 255).round().astype(np.uint8)
    encoding = processor(images=pil, text=text, return_tensors="pt")
    assert adapter.prompt_ids(question) == encoding.input_ids[0].tolist()
    assert (encoding.input_ids == IMAGE_TOKEN).sum() == n_visual == len(adapter.visual_positions(question))
    if layout.startswith("instructblip"):
        torch.testing.assert_close(adapter.extra_inputs(question, 1)["qformer_input_ids"], encoding.qformer_input_ids)
    x = torch.from_numpy(pil).permute(2, 0, 1)[None].float() / 255
    torch.testing.assert_close(adapter.pixel_values(x), encoding.pixel_values.float(), atol=1e-5, rtol=1e-5)
    assert adapter.extract(x, question).shape == (1, n_layers, 4, n_visual)


def test_from_pretrained_reads_and_overrides_the_checkpoint_normalisation(tmp_path):
    """SigLIP checkpoints normalise with mean = std = 0.5, not CLIP's; the values can also be set."""
    model, tok = llava("siglip", "full"), tiny_tokenizer()
    for obj in (model, tok, image_processor("siglip")):
        obj.save_pretrained(tmp_path)
    adapter = HFLlavaAdapter.from_pretrained(tmp_path)
    assert adapter.image_mean == (0.5, 0.5, 0.5) and adapter.image_std == (0.5, 0.5, 0.5)
    assert adapter.num_image_tokens() == 16
    custom = HFLlavaAdapter.from_pretrained(tmp_path, image_mean=(0.4, 0.4, 0.4), image_std=(0.2, 0.2, 0.2))
    x = torch.full((1, 3, 32, 32), 0.6)
    torch.testing.assert_close(custom.pixel_values(x), torch.full((1, 3, 32, 32), 1.0))
    with pytest.raises(ConfigError, match="image_mean"):
        HFLlavaAdapter(model, tok, image_mean=(0.5, 0.5))


def test_llava_next_and_wrong_classes_are_refused_clearly(tmp_path):
    from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration

    vision = dict(model_type="clip_vision_model", **VISION, projection_dim=32)
    config = LlavaNextConfig(vision_config=vision, text_config=LLAMA, image_token_index=IMAGE_TOKEN,
                             image_grid_pinpoints=[[32, 32], [32, 64]])
    with pytest.raises(ConfigError, match="LLaVA-NeXT.*not supported"):
        HFLlavaAdapter(LlavaNextForConditionalGeneration(config), tiny_tokenizer())
    config.save_pretrained(tmp_path)  # refused from the config alone, before any weights are read
    with pytest.raises(ConfigError, match="LLaVA-NeXT.*not supported"):
        HFLlavaAdapter.from_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="needs a Blip2ForConditionalGeneration"):
        HFBlip2Adapter(llava(), tiny_tokenizer())


def test_whole_answer_attack_loss_is_wired():
    """`attack_set(loss="sequence")` maximises the CE of each image's whole greedy answer (brief §2.4), not only
    its first token; the answers equal HF `generate`'s, and success compares whole answers."""
    from safety_kit.pip.experiment import TaskSet, attack_set

    model = blip2()
    adapter = HFBlip2Adapter(model, tiny_tokenizer())
    x, q = images(2, 32), "Is there a clock?"
    answers = adapter.greedy_answer_ids(x, q, max_new_tokens=4)
    ids = torch.tensor([adapter.prompt_ids(q)] * 2)
    with torch.no_grad():
        generated = model.generate(pixel_values=adapter.pixel_values(x), input_ids=ids,
                                   attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False)
    assert [g[-len(a):] for g, a in zip(generated.tolist(), answers)] == answers
    data = TaskSet(x, [q, q], np.array([a[0] for a in answers]), np.full(2, -1))
    adv, success = attack_set(adapter, data, "pgd", eps=16 / 255, loss="sequence", max_answer_tokens=4, steps=3)
    with torch.no_grad():
        before = torch.cat([adapter.answer_sequence_loss(x[i:i + 1], q, answers[i]) for i in range(2)])
        after = torch.cat([adapter.answer_sequence_loss(adv[i:i + 1], q, answers[i]) for i in range(2)])
    assert (after > before).all() and success.shape == (2,)
    assert success.tolist() == [a != b for a, b in zip(adapter.greedy_answer_ids(adv, q, 4), answers)]
    official, _ = attack_set(adapter, data, "pgd", eps=16 / 255, loss="sequence", alignment="hf431",
                             max_answer_tokens=4, steps=3)
    assert not torch.equal(official, adv)  # the alignment reaches the loss
    with pytest.raises(ConfigError, match="loss must be"):
        attack_set(adapter, data, "pgd", loss="whole")
