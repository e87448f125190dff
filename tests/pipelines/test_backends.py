"""Keyframe backends on tiny random configs of the real diffusers classes (no downloads): a plain call is
diffusers' own bit for bit, the image sits at exactly the frame it is given, bad frames/strengths are refused."""

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import LTX2ConditionPipeline, LTXConditionPipeline, WanVACEPipeline
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

from reasondiff.models import tiny_backends
from reasondiff.frames import latent_to_pixel_positions, pixel_to_latent_index
from reasondiff.pipelines.backends import LTX2Backend, LTXBackend, WanVACEBackend, story_prompt, wrap
from reasondiff.pipelines.backends.ltx2 import ltx2_conditions
from reasondiff.pipelines.backends.ltx import ltx_conditions
from reasondiff.pipelines.backends.wan_vace import vace_keyframe

SIZE = dict(height=32, width=32, num_frames=9)


def _image(seed=0):
    rng = np.random.default_rng(seed)
    return PIL.Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))


def _call(**extra):
    return {**SIZE, "num_inference_steps": 2, "generator": torch.Generator().manual_seed(0), "output_type": "np",
            **extra}


@pytest.fixture(scope="module")
def vace():
    pipe = WanVACEPipeline(**tiny_backends.vace_components(seed=0))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def ltx():
    pipe = LTXConditionPipeline(**tiny_backends.ltx_components(seed=0))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def ltx2():
    pipe = LTX2ConditionPipeline(**tiny_backends.ltx2_components(seed=0))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_ltx2_with_the_image_at_frame_1_is_diffusers_own_condition_call_bit_for_bit(ltx2):
    image = _image()
    theirs = ltx2(conditions=LTX2VideoCondition(frames=image), prompt="a cat plays", **_call()).frames
    ours = LTX2Backend(ltx2)(image, "a cat plays", image_frame_index=0, **_call()).frames
    assert np.array_equal(ours, theirs)
    assert not np.array_equal(ours, LTX2Backend(ltx2)(image, "a cat plays", image_frame_index=6, **_call()).frames)


@pytest.mark.parametrize("k", [0, 1, 2, 3, 6, 8])
def test_ltx2_condition_goes_to_the_latent_frame_that_holds_pixel_frame_k(ltx2, k):
    """LTX-2's index is a latent index: the pipeline's own prepare step must get the latent frame holding k."""
    t = ltx2.vae_temporal_compression_ratio  # 2 in the tiny VAE, 8 in the real one
    _, strengths, indices, _ = ltx2.preprocess_conditions(ltx2_conditions(_image(), k, 0.7, t), 32, 32, 9, "cpu")
    assert strengths == [0.7] and indices == [pixel_to_latent_index(k + 1, 9, t)]
    assert k + 1 in latent_to_pixel_positions(indices[0], 9, t)


def test_vace_with_the_image_at_frame_1_is_diffusers_own_first_frame_recipe_bit_for_bit(vace):
    image = _image()
    # diffusers' documented VACE recipe: the frame, grey (128) elsewhere, a black (keep) mask at it, white elsewhere
    grey = PIL.Image.new("RGB", (32, 32), (128, 128, 128))
    video = [image] + [grey] * 8
    mask = [PIL.Image.new("L", (32, 32), 0)] + [PIL.Image.new("L", (32, 32), 255)] * 8
    theirs = vace(prompt="a cat plays", video=video, mask=mask, **_call()).frames
    ours = WanVACEBackend(vace)(image, "a cat plays", image_frame_index=0, **_call()).frames
    assert np.array_equal(ours, theirs)
    assert not np.array_equal(ours, WanVACEBackend(vace)(image, "a cat plays", image_frame_index=4, **_call()).frames)


def test_ltx_with_the_image_at_frame_1_is_diffusers_own_image_call_bit_for_bit(ltx):
    image = _image()
    theirs = ltx(image=image, prompt="a cat plays", **_call()).frames  # frame_index=0, strength=1.0: its defaults
    ours = LTXBackend(ltx)(image, "a cat plays", image_frame_index=0, **_call()).frames
    assert np.array_equal(ours, theirs)
    assert not np.array_equal(ours, LTXBackend(ltx)(image, "a cat plays", image_frame_index=5, **_call()).frames)


@pytest.mark.parametrize("k", [0, 3, 8])
def test_vace_conditioning_holds_the_image_at_frame_k_only_and_keeps_only_that_frame(vace, k):
    image = _image()
    video, mask = vace_keyframe(image, k, 9, 32, 32)
    # the pipeline's own prepare step: video in [-1, 1], mask in [0, 1] with 1 = generate
    video_t, mask_t, _ = vace.preprocess_conditions(video, mask, None, 1, 32, 32, 9, torch.float32, "cpu")
    expected = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(video_t[0, :, k], expected, atol=1e-6)
    others = [i for i in range(9) if i != k]
    assert torch.allclose(video_t[0][:, others], torch.full_like(video_t[0][:, others], 128 / 127.5 - 1),
                          atol=1e-6)
    assert (mask_t[0, :, k] == 0).all() and (mask_t[0][:, others] == 1).all()
    inactive = video_t * (1 - (mask_t > 0.5).float())  # what VACE keeps: the image at k, nothing anywhere else
    assert [i for i in range(9) if inactive[0, :, i].abs().sum() > 0] == [k]


def test_ltx_condition_places_the_image_at_frame_k_and_nowhere_else(ltx):
    image = _image()
    tensor = ltx.video_processor.preprocess(image, 32, 32).unsqueeze(2)
    for k in (0, 5, 8):
        (condition,) = ltx_conditions(image, k, 1.0)
        assert (condition.image, condition.frame_index, condition.strength) == (image, k, 1.0)
        latents, mask, ids, extra = ltx.prepare_latents(
            [tensor], [condition.strength], [condition.frame_index], num_channels_latents=8, height=32, width=32,
            num_frames=9, generator=torch.Generator().manual_seed(0), dtype=torch.float32, device="cpu")
        tokens_per_frame = (32 // ltx.vae_spatial_compression_ratio) ** 2
        grid_mask = mask[0, extra:].view(-1, tokens_per_frame)  # one row per latent frame of the video itself
        if k == 0:  # blended into latent frame 0, which is the only conditioned frame of the grid
            grid_ids = ids
            assert extra == 0 and grid_mask[0].eq(1).all() and grid_mask[1:].eq(0).all()
        else:  # one latent frame of extra tokens, at time position k exactly; the grid itself untouched
            assert extra == tokens_per_frame and grid_mask.eq(0).all() and mask[0, :extra].eq(1).all()
            assert ids[0, 0, :extra].eq(k).all()
            assert torch.equal(ids[:, :, extra:], grid_ids)  # the video's own positions, as with no keyframe


@pytest.mark.parametrize("backend", ["vace", "ltx", "ltx2"])
@pytest.mark.parametrize("kwargs, name", [
    ({"image_frame_index": 9}, "image_frame_index"), ({"image_frame_index": -1}, "image_frame_index"),
    ({"strength": 1.5}, "strength"), ({"strength": -0.1}, "strength"), ({"strength": float("nan")}, "strength"),
    ({"frame_prompts": ["x"] * 5}, "frame_prompts"),
])
def test_a_frame_past_the_end_or_a_strength_outside_0_1_is_refused_naming_it(request, backend, kwargs, name):
    pipe = wrap(request.getfixturevalue(backend))
    with pytest.raises(ValueError, match=name):
        pipe(_image(), "a cat", **kwargs, **_call())


def test_vace_refuses_a_frame_count_its_vae_would_round(vace):
    with pytest.raises(ValueError, match="num_frames must be 4k\\+1"):
        WanVACEBackend(vace)(_image(), "a cat", image_frame_index=9, **_call(num_frames=10))


def test_a_script_is_told_in_one_prompt_in_time_order_and_a_plain_call_keeps_the_prompt():
    script = ["The cat sits."] * 3 + ["the cat jumps"] * 4 + ["The vase breaks"] * 2
    assert story_prompt("A cat plays", None) == "A cat plays"
    assert story_prompt("A cat plays", script) == ("A cat plays. First, the cat sits. Then, the cat jumps. "
                                                   "Finally, the vase breaks.")
    assert story_prompt("A cat plays.", ["A cat."] * 9) == "A cat plays. A cat."


def test_ltx2_shows_the_model_the_story_prompt(ltx2):
    image, script = _image(), ["the cat sits"] * 4 + ["the cat jumps"] * 5
    ours = LTX2Backend(ltx2)(image, "a cat", frame_prompts=script, image_frame_index=0, **_call()).frames
    theirs = ltx2(conditions=LTX2VideoCondition(frames=image), prompt=story_prompt("a cat", script), **_call()).frames
    assert np.array_equal(ours, theirs)


def test_vace_reads_a_one_text_script_exactly_as_diffusers_reads_that_prompt(vace):
    image = _image()
    video, mask = vace_keyframe(image, 3, 9, 32, 32)
    theirs = vace(prompt="the cat knocks the vase", video=video, mask=mask, **_call()).frames
    ours = WanVACEBackend(vace)(image, "a cat plays", frame_prompts=["the cat knocks the vase"] * 9,
                                image_frame_index=3, **_call()).frames
    assert np.array_equal(ours, theirs)


def _cross_attention_outputs(backend, script):
    """Block 0's and VACE block 0's text cross-attention outputs at the first denoising call, per latent frame."""
    outputs, transformer = {}, backend.pipe.transformer
    hooks = [module.register_forward_hook(lambda m, args, out, name=name: outputs.setdefault(name, out.detach()))
             for name, module in (("block", transformer.blocks[0].attn2), ("vace", transformer.vace_blocks[0].attn2))]
    try:
        backend(_image(), "a cat", frame_prompts=script, image_frame_index=0,
                **_call(num_inference_steps=1, guidance_scale=1.0))
    finally:
        for hook in hooks:
            hook.remove()
    tokens_per_frame = (32 // 8 // 2) ** 2  # 8x VAE, 2x2 patches
    return {name: out[0].view(3, tokens_per_frame, -1) for name, out in outputs.items()}  # 9 frames: 3 latent


@pytest.mark.parametrize("latent", [1, 2])
def test_vace_changing_latent_frame_ks_text_changes_only_frame_ks_cross_attention(vace, latent):
    backend = WanVACEBackend(vace)
    script = ["the cat sits"] + ["the cat jumps"] * 4 + ["the vase breaks"] * 4
    changed = list(script)
    for p in latent_to_pixel_positions(latent, 9):
        changed[p - 1] = "a dog runs in the garden"
    before, after = _cross_attention_outputs(backend, script), _cross_attention_outputs(backend, changed)
    for name in ("block", "vace"):
        differs = [not torch.equal(before[name][f], after[name][f]) for f in range(3)]
        assert differs == [f == latent for f in range(3)], name


def test_ltx_reads_a_one_text_script_exactly_as_diffusers_reads_that_prompt(ltx):
    image = _image()
    theirs = ltx(conditions=ltx_conditions(image, 5, 1.0), prompt="the cat knocks the vase", **_call()).frames
    ours = LTXBackend(ltx)(image, "a cat plays", frame_prompts=["the cat knocks the vase"] * 9, image_frame_index=5,
                           **_call()).frames
    assert np.array_equal(ours, theirs)


def _ltx_cross_attention(backend, script, k):
    """Block 0's text cross-attention output at the first denoising call: (keyframe tokens, grid per latent frame)."""
    outputs = []
    hook = backend.pipe.transformer.transformer_blocks[0].attn2.register_forward_hook(
        lambda m, args, out: outputs.append(out.detach()))
    try:
        backend(_image(), "a cat", frame_prompts=script, image_frame_index=k,
                **_call(num_inference_steps=1, guidance_scale=1.0))
    finally:
        hook.remove()
    per_frame = (32 // backend.pipe.vae_spatial_compression_ratio) ** 2
    extra = per_frame if k > 0 else 0
    return outputs[0][0, :extra], outputs[0][0, extra:].view(3, per_frame, -1)  # 9 frames: 3 latent


@pytest.mark.parametrize("k, latent", [(0, 1), (0, 2), (2, 1), (7, 1), (7, 2)])
def test_ltx_changing_latent_frame_ks_text_changes_only_frame_ks_cross_attention(ltx, k, latent):
    """The keyframe's own tokens (prepended when k > 0) read the narrative of the latent frame holding pixel k."""
    backend = LTXBackend(ltx)
    script = ["the cat sits"] + ["the cat jumps"] * 4 + ["the vase breaks"] * 4
    changed = list(script)
    for p in latent_to_pixel_positions(latent, 9, ltx.vae_temporal_compression_ratio):
        changed[p - 1] = "a dog runs in the garden"
    (key_before, before), (key_after, after) = (_ltx_cross_attention(backend, s, k) for s in (script, changed))
    assert [not torch.equal(before[f], after[f]) for f in range(3)] == [f == latent for f in range(3)]
    keyframe_latent = pixel_to_latent_index(k + 1, 9, ltx.vae_temporal_compression_ratio)
    assert (not torch.equal(key_before, key_after)) == (k > 0 and keyframe_latent == latent)


def test_vace_strength_is_its_conditioning_scale(vace):
    image = _image()
    video, mask = vace_keyframe(image, 2, 9, 32, 32)
    theirs = vace(prompt="a cat", video=video, mask=mask, conditioning_scale=0.5, **_call()).frames
    ours = WanVACEBackend(vace)(image, "a cat", image_frame_index=2, strength=0.5, **_call()).frames
    assert np.array_equal(ours, theirs)


# --- wired: registry, loading, reasondiff.generate and the command line -------------------------------------------

import json  # noqa: E402

from typer.testing import CliRunner  # noqa: E402

import reasondiff  # noqa: E402
from reasondiff.cli import app  # noqa: E402
from reasondiff.narrator.schema import Narration  # noqa: E402
from reasondiff.pipelines.loading import load_pipeline  # noqa: E402
from reasondiff.pipelines.registry import backend_of, model_spec  # noqa: E402

runner = CliRunner()
SCRIPT = Narration.from_segments(5, [(1, 4, "the cat sits"), (5, 9, "the cat knocks the vase")])


@pytest.fixture(scope="module")
def folders(tmp_path_factory, vace, ltx):
    """Both tiny pipelines saved as diffusers folders, as a user's download would be laid out."""
    root = tmp_path_factory.mktemp("models")
    vace.save_pretrained(root / "vace")
    ltx.save_pretrained(root / "ltx")
    return {"vace": root / "vace", "ltx": root / "ltx"}


@pytest.fixture(scope="module")
def ltx2_folder(tmp_path_factory, ltx2):
    folder = tmp_path_factory.mktemp("models") / "ltx2"
    ltx2.save_pretrained(folder)
    return folder


def test_a_vace_or_ltx_folder_finds_its_backend_and_loads_wrapped(folders):
    assert backend_of(folders["vace"]) == "wan-vace" and backend_of(folders["ltx"]) == "ltx"
    assert (model_spec(str(folders["ltx"])).frames, model_spec(str(folders["ltx"])).guidance) == (161, 3.0)
    pipe, _ = load_pipeline(str(folders["vace"]), device="cpu")
    assert isinstance(pipe, WanVACEBackend) and type(pipe.pipe).__name__ == "WanVACEPipeline"
    with pytest.raises(ValueError, match="--lora is for ReasonDiff"):
        load_pipeline(str(folders["ltx"]), lora=folders["ltx"], device="cpu")


@pytest.mark.parametrize("backend, pipe_class", [("vace", WanVACEBackend), ("ltx", LTXBackend), ("ltx2", LTX2Backend)])
def test_generate_renders_the_script_at_its_frame_and_plain_wan_mode_at_frame_1(request, backend, pipe_class):
    raw = request.getfixturevalue(backend)
    pipe, image = pipe_class(raw), _image()
    out = reasondiff.generate(pipe, image, "a cat plays", narration=SCRIPT, mode="reasondiff", **_call())
    direct = pipe(image, "a cat plays", frame_prompts=SCRIPT.descriptions, image_frame_index=4, **_call()).frames
    assert np.array_equal(out.frames, direct) and out.narration == SCRIPT
    story = "a cat plays. First, the cat sits. Finally, the cat knocks the vase."
    assert out.prompt == ("a cat plays" if pipe.framewise_text else story)  # VACE, LTX read the script frame-wise
    assert pipe.framewise_text == (backend != "ltx2")
    plain = reasondiff.generate(pipe, image, "a cat plays", mode="wan", **_call())
    assert np.array_equal(plain.frames, pipe(image, "a cat plays", **_call()).frames) and plain.narration is None
    with pytest.raises(ValueError, match="mode 'no_enhanced_latents' needs ReasonDiff's Wan2.1-I2V pipeline"):
        reasondiff.generate(pipe, image, "a cat plays", narration=SCRIPT, mode="no_enhanced_latents", **_call())
    with pytest.raises(ValueError, match="strength"):
        reasondiff.generate(pipe, image, "a cat plays", narration=SCRIPT, strength=2.0, **_call())


def _cli(folder, tmp_path, *extra):
    image, script = tmp_path / "cat.png", tmp_path / "script.json"
    _image().save(image)
    script.write_text(SCRIPT.to_json())
    return runner.invoke(app, ["--quiet", "generate", "--model", str(folder), "-i", str(image), "-p", "a cat plays",
                               "-n", str(script), "--frames", "9", "--height", "32", "--width", "32", "--steps", "2",
                               "-o", str(tmp_path / "out.mp4"), *extra])


@pytest.mark.parametrize("backend", ["vace", "ltx"])
def test_reasondiff_generate_on_a_saved_folder_renders_the_narration(folders, tmp_path, backend):
    result = _cli(folders[backend], tmp_path, "--strength", "0.8")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out.narration.json").read_text())
    assert record["position"] == 5 and record["descriptions"] == SCRIPT.descriptions
    shown = record["metadata"]["generation"]["prompt_used"]
    assert shown == "a cat plays"  # both read the script frame-wise
    assert (tmp_path / "out.mp4").stat().st_size > 0


@pytest.mark.parametrize("model, extra, message", [
    ("vace", ["--mode", "no_multi_prompt"], "mode 'no_multi_prompt' needs ReasonDiff's Wan2.1-I2V pipeline"),
    ("ltx", ["--strength", "1.5"], "--strength must be a number in [0, 1]"),
    ("ltx", ["--strength", "nan"], "--strength must be a number in [0, 1]"),
    ("tiny", ["--strength", "0.5"], "--strength is for the keyframe backends"),
])
def test_generate_refuses_a_mode_or_strength_a_backend_cannot_take_in_one_line(folders, tmp_path, model, extra,
                                                                               message):
    result = _cli(folders.get(model, model), tmp_path, *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_an_ltx2_folder_loads_wrapped_and_generate_renders_the_narration_on_it(ltx2_folder, tmp_path):
    assert backend_of(ltx2_folder) == "ltx2" and model_spec(str(ltx2_folder)).frames == 121
    result = _cli(ltx2_folder, tmp_path, "--strength", "1.0")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out.narration.json").read_text())
    assert record["position"] == 5 and record["metadata"]["generation"]["prompt_used"].startswith("a cat plays. First")
