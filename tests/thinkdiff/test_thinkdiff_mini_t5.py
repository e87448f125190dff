"""The T5 decoder around the mini's frozen UMT5 encoder, and the one-frame text-to-image mini decoder."""

import json

import numpy as np
import torch
from transformers import UMT5EncoderModel

from reasondiff.mini.pretrained import shipped_path
from reasondiff.mini.thinkdiff import t5 as mini_t5
from reasondiff.mini.thinkdiff.decoder import TEXT_LENGTH, TINY, MiniDecoder, build_pipeline, encode_text, pad_tokens


def test_the_decoder_model_reads_the_shipped_encoder_unchanged_and_frozen():
    encoder = UMT5EncoderModel.from_pretrained(shipped_path() / "text_encoder")
    model = mini_t5.build(encoder)
    ids = torch.tensor([[5, 9, 14, 1]])
    with torch.no_grad():
        torch.testing.assert_close(model.get_encoder()(input_ids=ids).last_hidden_state,
                                   encoder(input_ids=ids).last_hidden_state, rtol=0, atol=0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "lm_head.weight" in trainable and all(n.startswith(("decoder.", "lm_head.")) for n in trainable)
    assert model.config.num_decoder_layers == mini_t5.DECODER_LAYERS and not model.config.tie_word_embeddings


def test_captions_drop_attributes_but_never_all():
    caps = mini_t5.world_captions(np.random.default_rng(0), 300)
    assert all(caps) and len(set(caps)) > 50
    assert any(c.startswith("a ") and " in the " not in c for c in caps)  # the room dropped
    assert any(c.startswith("in the ") for c in caps)  # only the room kept


def test_training_resumes_exactly_and_keeps_the_encoder(tmp_path):
    straight = mini_t5.train(tmp_path / "a", steps=4, batch_size=4, checkpoint_every=2, log=lambda _: None)
    mini_t5.train(tmp_path / "b", steps=2, batch_size=4, checkpoint_every=2, log=lambda _: None)  # "killed" after 2
    resumed = mini_t5.train(tmp_path / "b", steps=4, batch_size=4, checkpoint_every=2, log=lambda _: None)
    a = json.loads((tmp_path / "a" / "checkpoint" / "state.json").read_text())["losses"]
    b = json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())["losses"]
    assert len(a) == 4 and a == b and straight["final_loss"] == resumed["final_loss"]
    assert 0.0 <= resumed["read_back"] <= 1.0
    encoder = UMT5EncoderModel.from_pretrained(shipped_path() / "text_encoder")
    trained = mini_t5.build(encoder)
    trained.load_state_dict(type(trained).from_pretrained(tmp_path / "b" / "t5").state_dict())
    assert all(torch.equal(v, trained.encoder.state_dict()[k]) for k, v in encoder.encoder.state_dict().items())


def test_the_text_to_image_decoder_takes_text_and_tokens_in_one_layout():
    torch.manual_seed(0)
    from diffusers import WanTransformer3DModel

    pipe = build_pipeline(WanTransformer3DModel(**TINY))
    assert pipe.transformer.config.in_channels == 16 and pipe.transformer.config.image_dim is None  # T2V
    text = encode_text(pipe.tokenizer, pipe.text_encoder, ["a cat in the kitchen"])
    n = int(pipe.tokenizer(["a cat in the kitchen"]).attention_mask[0].__len__())
    assert text.shape == (1, TEXT_LENGTH, 64) and text[0, n:].abs().sum() == 0 and text[0, n - 1].abs().sum() > 0
    tokens = torch.randn(1, 5, 64)
    padded = pad_tokens(tokens)
    assert padded.shape == (1, TEXT_LENGTH, 64) and torch.equal(padded[:, :5], tokens) and padded[:, 5:].abs().sum() == 0
    decoder = MiniDecoder(pipe, steps=2)
    a, b = decoder.text("a cat in the kitchen", 3), decoder.tokens(text, 3)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)  # text = its own tokens
    assert not np.array_equal(a, decoder.text("a dog in the garden", 3))


def test_the_mini_vlm_folder_round_trips(tmp_path):
    import PIL.Image

    from reasondiff.mini.thinkdiff import vlm
    from reasondiff.thinkdiff import lvlm_features, tiny

    processor = tiny.qwen2vl_processor()
    model = tiny.qwen2vl(0, processor)
    model2, processor2 = vlm.load(vlm.save(model, processor, tmp_path / "vlm"))
    items = [PIL.Image.new("RGB", (56, 56), (200, 40, 40)), "what comes next?"]
    a = lvlm_features(model, processor, items, max_new_tokens=5, min_new_tokens=5)
    b = lvlm_features(model2, processor2, items, max_new_tokens=5, min_new_tokens=5)
    assert a.text == b.text and torch.equal(a.token_ids, b.token_ids)
    torch.testing.assert_close(a.features, b.features)
