"""The whole mini recipe at micro scale: cache -> stage 0 -> stage 1 -> stage 2 -> assembled pipeline."""

import numpy as np
import torch
import yaml
from PIL import Image

from diffusers import WanTransformer3DModel

from reasondiff import ReasonDiffPipeline, VisionNarrator
from reasondiff.mini.build import assemble, build_cache
from reasondiff.mini.pretrained import load_pipeline
from reasondiff.mini.components import components, transformer_config, world_words
from reasondiff.mini.world import EventScript
from reasondiff.training import Trainer, load_config
from reasondiff.pipelines.narrated import generate


def train(tmp_path, name, **settings):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"batch_size": 2, "max_steps": 2, "checkpoint_every": 100, "log_every": 100,
                                    "output_dir": str(tmp_path / name), **settings}))
    return Trainer(load_config(path)).train()


def test_the_mini_recipe_runs_end_to_end(tmp_path):
    vae = components()["vae"]  # untrained: the chain, not the quality, is under test
    cache = build_cache(tmp_path / "cache", vae, clips=4, progress=False)
    micro = {**transformer_config(), "num_layers": 1, "patch_size": [1, 2, 2]}
    base = train(tmp_path, "s0", stage=0, transformer_config=micro, cache_dir=str(cache))
    s1 = train(tmp_path, "s1", stage=1, model=str(base), cache_dir=str(cache),
               alignformer={"hidden_dim": 32, "num_heads": 4, "ff_mult": 2})
    s2 = train(tmp_path, "s2", stage=2, model=str(base), init_from=str(s1), cache_dir=str(cache))

    pipe = load_pipeline(assemble(tmp_path / "mini", vae, base, s2))
    pipe.set_progress_bar_config(disable=True)
    assert "reasondiff" in pipe.transformer.peft_config  # the stage-1 LoRA, as ReasonDiff's adapter
    image = Image.fromarray(EventScript("cat", "vase", "kitchen").render(16))
    call = dict(image=image, prompt="a cat plays in the kitchen", num_frames=17, height=64, width=64,
                num_inference_steps=1, output_type="np")
    out = generate(pipe, **call, narrator=VisionNarrator("synthworld:", use_cache=False), generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (1, 17, 64, 64, 3) and np.isfinite(out.frames).all()
    assert out.narration.position == 17

    # The baseline mode is the stage-0 model: the LoRA is off while it runs, and on again afterwards.
    with torch.no_grad():  # two training steps leave the LoRA near zero: make it matter
        for name, param in pipe.transformer.named_parameters():
            if "lora_B" in name:
                param.add_(0.05)
    plain = ReasonDiffPipeline(**components(vae), transformer=WanTransformer3DModel.from_pretrained(base / "transformer"),
                               alignformer=pipe.alignformer)
    plain.set_progress_bar_config(disable=True)
    narration = out.narration
    seeded = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    wan = generate(pipe, **call, mode="wan", generator=seeded()).frames
    np.testing.assert_allclose(wan, plain(**call, generator=seeded()).frames, atol=1e-5)
    with_lora = generate(pipe, **call, narration=narration, generator=seeded()).frames
    assert np.abs(with_lora - generate(plain, **call, narration=narration, generator=seeded()).frames).max() > 1e-3
    tok = pipe.tokenizer
    assert all(tok.unk_token_id not in tok(w).input_ids and len(tok.tokenize(w)) == 1 for w in world_words())
