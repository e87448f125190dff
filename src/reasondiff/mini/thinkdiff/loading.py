"""ThinkDiff-mini's parts from folders, the shipped ones by default, or 'tiny' random ones (a smoke test)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

PARTS = ("vlm", "aligner", "decoder")


def shipped(part: str) -> Path:
    """src/reasondiff/mini/weights/thinkdiff/<part> (vlm, aligner, t5, decoder)."""
    return Path(str(resources.files("reasondiff") / "mini" / "weights" / "thinkdiff" / part))


def load_vlm(path: str | Path):
    """(model, processor): the mini VLM folder written by `vlm.save`, or tiny random Qwen2-VL."""
    if str(path) == "tiny":
        from ...thinkdiff import tiny

        processor = tiny.qwen2vl_processor()
        return tiny.qwen2vl(0, processor), processor
    from .vlm import load

    return load(path)


def load_aligner(path: str | Path | None, vlm, text_encoder):
    """A trained aligner, or (path None) an untrained one with the paper's RMSNorm init (tiny smoke runs only)."""
    from ...thinkdiff.aligner import Aligner

    if path is not None:
        return Aligner.from_pretrained(path).eval()
    torch.manual_seed(0)
    return Aligner.from_text_encoder(text_encoder, in_dim=vlm.config.get_text_config().hidden_size).eval()


def load_decoder(path: str | Path, vae: str | Path | None = None, steps: int | None = None,
                 guidance: float | None = None):
    from .decoder import GUIDANCE, STEPS, TINY, MiniDecoder, build_pipeline

    steps, guidance = steps or STEPS, guidance if guidance is not None else GUIDANCE

    if str(path) == "tiny":
        from diffusers import WanTransformer3DModel

        torch.manual_seed(0)
        return MiniDecoder(build_pipeline(WanTransformer3DModel(**TINY)), steps=steps, guidance=guidance)
    return MiniDecoder.from_pretrained(path, vae=vae, steps=steps, guidance=guidance)


def offline_model():
    """ThinkDiff-mini as `reasondiff thinkdiff generate --model mini` runs it: the shipped VLM, aligner and decoder,
    at the settings SynthWorld-CoBSAT measured (greedy answers of <= 32 tokens, 20 steps, guidance 3, 64x64)."""
    from ...example import bundled_episode
    from ...thinkdiff.offline import OfflineModel
    from .decoder import GUIDANCE, SIZE, STEPS, TEXT_LENGTH
    from .reasoner import INSTRUCTION

    return OfflineModel(
        vlm=shipped("vlm"), aligner=shipped("aligner"), pipeline=lambda: load_decoder(shipped("decoder")).pipe,
        call=dict(height=SIZE, width=SIZE, num_frames=1, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                  max_sequence_length=TEXT_LENGTH),
        instruction=INSTRUCTION, max_new_tokens=32, sampled=False, example=bundled_episode)


def missing(paths: dict[str, str | Path | None]) -> list[str]:
    """The parts given as folders that do not exist."""
    return [f"--{k} {v}" for k, v in paths.items() if v is not None and str(v) != "tiny" and not Path(v).is_dir()]
