"""The authors' settings as options: EVA ViT-g vision path, LR schedule, sampled answers, their checkpoints."""

import PIL.Image
import pytest
import torch
from typer.testing import CliRunner

from reasondiff.thinkdiff import Aligner, ThinkDiffLVLM, tiny
from reasondiff.thinkdiff import cli as thinkdiff_cli
from reasondiff.thinkdiff.convert import convert_checkpoint, convert_state_dict
from reasondiff.thinkdiff.features import AUTHORS_SAMPLING, VISION_LAYERS, clip_image_tokens
from reasondiff.thinkdiff.training import AUTHORS_SCHEDULE, TrainConfig, learning_rate

runner = CliRunner()


def test_eva_path_is_the_last_layer_after_the_post_layernorm_pooled_2x():
    vision, processor = tiny.eva_vision(0), tiny.clip_image_processor()
    assert type(vision).__name__ == "Blip2VisionModel"
    images = [PIL.Image.new("RGB", (32, 32), (200, 30, 30)), PIL.Image.new("RGB", (32, 32), (20, 90, 230))]
    tokens = clip_image_tokens(vision, processor, images, layer=VISION_LAYERS["eva"])
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = vision(pixel_values=pixels, output_hidden_states=True)
        last = vision.post_layernorm(out.hidden_states[-1])  # the last block's output, then BLIP-2's post-LN
    assert tokens.shape == (2, 1 + 4, tiny.CLIP_DIM)  # CLS + a 4x4 patch grid pooled to 2x2
    torch.testing.assert_close(tokens[:, 0], last[:, 0])
    grid = last[:, 1:].reshape(2, 4, 4, -1)
    torch.testing.assert_close(tokens[:, 3], grid[:, 2:, :2].mean((1, 2)))  # bottom-left 2x2 block
    clip_like = clip_image_tokens(vision, processor, images, layer=-2)  # what the CLIP default would take
    assert not torch.allclose(clip_like, tokens)
    with pytest.raises(ValueError, match="final"):
        clip_image_tokens(vision, processor, images, layer="penultimate")


def test_schedule_warms_up_then_follows_the_cosine_down_to_min_lr():
    config = TrainConfig(steps=1000, learning_rate=1e-4, lr_warmup_steps=200, min_lr=8e-5)
    rates = [learning_rate(config, s) for s in range(1000)]
    assert rates[0] == pytest.approx(1e-4 / 200) and rates[99] == pytest.approx(0.5e-4)  # linear from 0
    assert rates[199] == pytest.approx(1e-4) and rates[200] == pytest.approx(1e-4)  # the peak, then the cosine
    assert rates[599] == pytest.approx(9e-5, rel=1e-3)  # halfway down the cosine: the midpoint of lr and min_lr
    assert rates[-1] == pytest.approx(8e-5)
    assert all(a >= b for a, b in zip(rates[200:], rates[201:], strict=False))
    assert learning_rate(TrainConfig(learning_rate=3e-3), 12345) == 3e-3  # the default: constant, as before
    assert AUTHORS_SCHEDULE == {"lr_warmup_steps": 2000, "min_lr": 8e-5, "weight_decay": 0.05}


def test_real_models_default_to_the_authors_schedule_and_sampling_tiny_to_neither():
    assert thinkdiff_cli._schedule("google/t5-v1_1-xxl", None, None, None) == AUTHORS_SCHEDULE
    assert thinkdiff_cli._schedule("tiny", None, None, None) == {"lr_warmup_steps": 0, "min_lr": None,
                                                                 "weight_decay": 0.0}
    assert thinkdiff_cli._schedule("google/umt5-xxl", 10, None, 0.0)["lr_warmup_steps"] == 10  # given options win
    assert thinkdiff_cli._sampling(None, "Qwen/Qwen2-VL-7B-Instruct") == AUTHORS_SAMPLING
    assert thinkdiff_cli._sampling(None, "tiny") is None and thinkdiff_cli._sampling(False, "Qwen/x") is None
    assert AUTHORS_SAMPLING == {"do_sample": True, "temperature": 0.6, "top_p": 0.9}
    assert thinkdiff_cli._device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_the_trainer_applies_the_schedule_to_the_optimizer(monkeypatch, tmp_path):
    from reasondiff.thinkdiff import training

    seen = []
    original = training.thinkdiff_loss

    def spy(t5, model, batch, *args):
        seen.append(model_optimizer[0].param_groups[0]["lr"])
        return original(t5, model, batch, *args)

    model_optimizer = []
    real_adamw = torch.optim.AdamW

    class adamw(real_adamw):  # noqa: N801 - stands in for the class (a function would break deepspeed's import)
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            model_optimizer.append(self)

    monkeypatch.setattr(training, "thinkdiff_loss", spy)
    monkeypatch.setattr(torch.optim, "AdamW", adamw)
    t5 = tiny.t5(0)
    samples = [training.TokenFeatures(features=torch.randn(4, tiny.VLM_DIM), text="a red square on a blue wall",
                                      token_ids=torch.arange(4), offsets=torch.tensor([0, 2, 6, 13, 27]))] * 4
    config = TrainConfig(steps=5, batch_size=2, learning_rate=1e-3, lr_warmup_steps=2, min_lr=1e-4,
                         weight_decay=0.05, checkpoint_every=100)
    training.train(config, Aligner.from_text_encoder(t5, tiny.VLM_DIM), t5, tiny.t5_tokenizer(), samples, tmp_path,
                   progress=False)
    assert seen == pytest.approx([learning_rate(config, s) for s in range(5)])
    assert seen[1] == pytest.approx(1e-3) and seen[-1] == pytest.approx(1e-4)
    assert model_optimizer[0].param_groups[0]["weight_decay"] == 0.05


def test_sampled_answers_reach_generate_and_a_seed_repeats_them():
    processor = tiny.qwen2vl_processor()
    vlm = tiny.qwen2vl(0, processor)
    aligner = Aligner.from_text_encoder(tiny.t5(0), tiny.VLM_DIM)
    calls = []
    generate = vlm.generate

    def spy(**kwargs):
        calls.append({k: kwargs.get(k) for k in ("do_sample", "temperature", "top_p", "max_new_tokens")})
        return generate(**kwargs)

    vlm.generate = spy
    lvlm = ThinkDiffLVLM(vlm, processor, aligner, max_new_tokens=12, sampling=AUTHORS_SAMPLING)
    items = [PIL.Image.new("RGB", (56, 56), (10, 200, 30)), "Describe the image."]
    texts = []
    for seed in (0, 0, 1, 2, 3):
        torch.manual_seed(seed)
        texts.append(lvlm.encode(items)[1])
    assert calls[0] == {"do_sample": True, "temperature": 0.6, "top_p": 0.9, "max_new_tokens": 12}
    assert texts[0] == texts[1] and len(set(texts[1:])) > 1  # seeded: repeatable; sampled: not one fixed answer
    greedy = ThinkDiffLVLM(vlm, processor, aligner, max_new_tokens=12)
    greedy.encode(items)
    assert calls[-1]["do_sample"] is False


def authors_state_dict(in_dim=6, hidden=8, out_dim=5, prefix="model."):
    """The authors' layout: mm_projector = Sequential(Linear, GELU, Linear, RMSNorm), inside a bigger model."""
    torch.manual_seed(3)
    projector = torch.nn.Sequential(torch.nn.Linear(in_dim, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, out_dim),
                                    torch.nn.RMSNorm(out_dim, eps=1e-6))
    with torch.no_grad():
        projector[3].weight.uniform_(0.05, 0.2)
    state = {f"{prefix}mm_projector.{k}": v for k, v in projector.state_dict().items()}
    state["model.t5_model.shared.weight"] = torch.zeros(3, 3)  # the rest of their model is ignored
    return projector, state


def test_the_authors_checkpoint_converts_to_the_same_function(tmp_path):
    projector, state = authors_state_dict()
    aligner = convert_state_dict(state)
    assert (aligner.config.in_dim, aligner.config.hidden_dim, aligner.config.out_dim) == (6, 8, 5)
    x = torch.randn(2, 7, 6)
    with torch.no_grad():
        torch.testing.assert_close(aligner(x), projector(x))
    torch.save({"model": state, "optimizer": {}}, tmp_path / "checkpoint_best.pth")  # LAVIS's wrapping
    result = runner.invoke(thinkdiff_cli.app, ["convert", str(tmp_path / "checkpoint_best.pth"), str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "diffusion_pytorch_model.safetensors").is_file()
    with torch.no_grad():
        torch.testing.assert_close(Aligner.from_pretrained(tmp_path / "a")(x), projector(x))
    no_norm = {k: v for k, v in state.items() if ".3." not in k}
    assert convert_state_dict(no_norm).config.norm_type == "none"


def test_checkpoints_that_are_not_aligners_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no mm_projector"):
        convert_state_dict({"encoder.weight": torch.zeros(2, 2)})
    _, state = authors_state_dict()
    del state["model.mm_projector.2.weight"], state["model.mm_projector.2.bias"]
    with pytest.raises(ValueError, match="expected Linear, Linear"):
        convert_state_dict(state)
    with pytest.raises(FileNotFoundError):
        convert_checkpoint(tmp_path / "missing.pth", tmp_path / "out")
    result = runner.invoke(thinkdiff_cli.app, ["convert", str(tmp_path / "missing.pth"), str(tmp_path / "o")])
    assert result.exit_code == 2 and "not found" in result.output


def test_cobsat_refuses_a_real_model_without_an_aligner(tmp_path):
    for extra in (["--model", "black-forest-labs/FLUX.1-dev"], ["--vlm", "Qwen/Qwen2-VL-7B-Instruct"]):
        result = runner.invoke(thinkdiff_cli.app, ["cobsat", "--root", str(tmp_path), "--judge-model", "j", *extra])
        assert result.exit_code == 2 and "--aligner is required" in result.output, result.output
        assert len([line for line in result.output.splitlines() if line.strip()]) == 1  # one line, no traceback
