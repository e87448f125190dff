"""The T5 decoder ThinkDiff-mini aligns to: `UMT5ForConditionalGeneration` around the mini's frozen UMT5 encoder.

ThinkDiff trains its aligner against the decoder of the encoder-decoder whose encoder the diffusion model
reads (FLUX: T5-XXL). The mini's text encoder (`reasondiff-mini/text_encoder`) is an encoder alone, so this
module gives it a decoder: the encoder's weights are copied in and frozen (shared embedding included, so the
encoder stays bit-for-bit the one the decoder model reads), and the decoder layers and the (untied) LM head
learn world captions. Half the samples are reconstruction (caption -> caption: the decoder must read the
content from the encoder's states), half continuation (a random word prefix -> the rest), as T5's span
objective mixes both. Read-back, the figure reported, is the share of held-out captions the decoder writes
back exactly from the encoder's states.

    python -m reasondiff.mini.thinkdiff.t5 OUT --steps 3000      # resumes from OUT/checkpoint
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import typer

from ...thinkdiff.masking import split_caption
from .checkpoint import resume_state, run_steps
from .stills import caption, random_still

DECODER_LAYERS = 2


def build(text_encoder=None, seed: int = 0):
    """A UMT5 encoder-decoder whose encoder (and shared embedding) is `text_encoder`'s, frozen."""
    from transformers import UMT5EncoderModel, UMT5ForConditionalGeneration

    from ..pretrained import shipped_path

    text_encoder = text_encoder or UMT5EncoderModel.from_pretrained(shipped_path() / "text_encoder")
    config = text_encoder.config.to_dict()
    config.update(num_decoder_layers=DECODER_LAYERS, tie_word_embeddings=False, decoder_start_token_id=0,
                  is_encoder_decoder=True, architectures=["UMT5ForConditionalGeneration"])
    config = type(text_encoder.config)(**config)
    config.tie_word_embeddings = False  # the constructor keeps the encoder's tie; the LM head must learn, untied
    torch.manual_seed(seed)
    model = UMT5ForConditionalGeneration(config)
    missing, _ = model.load_state_dict(text_encoder.state_dict(), strict=False)
    assert not [k for k in missing if k.startswith("encoder.") or k == "shared.weight"], missing
    freeze_encoder(model)
    return model


def freeze_encoder(model) -> None:
    model.shared.requires_grad_(False)
    model.encoder.requires_grad_(False)


def world_captions(rng: np.random.Generator, n: int, keep: float = 0.7) -> list[str]:
    """Captions of random stills, each attribute kept with probability `keep` (never none)."""
    out = []
    while len(out) < n:
        attrs = random_still(rng, held_out=False).attributes()
        kept = {k: v for k, v in attrs.items() if rng.random() < keep}
        if "state" in kept and "object" not in kept:
            kept.pop("state")
        if kept:
            out.append(caption(kept))
    return out


def batch(tokenizer, captions: list[str], generator: torch.Generator) -> dict[str, torch.Tensor]:
    pairs = [split_caption(c, generator) if i % 2 else (c, c) for i, c in enumerate(captions)]
    enc = tokenizer([p for p, _ in pairs], padding=True, return_tensors="pt")
    tgt = tokenizer([t for _, t in pairs], padding=True, return_tensors="pt")
    labels = tgt.input_ids.masked_fill(tgt.attention_mask == 0, -100)
    return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask, "labels": labels}


@torch.no_grad()
def read_back(model, tokenizer, captions: list[str]) -> float:
    """The share of `captions` the decoder writes back exactly from the encoder's states (greedy)."""
    model.eval()
    enc = tokenizer(captions, padding=True, return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=24, do_sample=False)
    said = tokenizer.batch_decode(out, skip_special_tokens=True)
    return float(np.mean([a.strip() == b for a, b in zip(said, captions, strict=True)]))


def train(out: str | Path, steps: int = 3000, batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0,
          checkpoint_every: int = 250, log=print) -> dict:
    """Train (or resume) the decoder; writes OUT/t5 (the model, safetensors) and OUT/result.json."""
    from transformers import AutoTokenizer, UMT5ForConditionalGeneration

    from ..pretrained import shipped_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(shipped_path() / "tokenizer")
    ckpt = out / "checkpoint"
    model = UMT5ForConditionalGeneration.from_pretrained(ckpt / "model") if ckpt.is_dir() else build(seed=seed)
    freeze_encoder(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    step, losses = resume_state(out, optimizer)
    model.train()

    def loss_at(step: int) -> torch.Tensor:
        rng = np.random.default_rng([seed, step])
        return model(**batch(tokenizer, world_captions(rng, batch_size), torch.Generator().manual_seed(step))).loss

    step = run_steps(model, optimizer, loss_at, step, steps, losses, out, checkpoint_every, log)
    held_out = world_captions(np.random.default_rng([seed, 10**9]), 200)
    result = {"steps": step, "final_loss": float(np.mean(losses[-50:])), "read_back": read_back(model, tokenizer,
                                                                                                 held_out)}
    model.save_pretrained(out / "t5")
    tokenizer.save_pretrained(out / "t5")
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(out: Path = typer.Argument(..., help="Run folder: checkpoint/, t5/ (the model) and result.json."),
         steps: int = typer.Option(3000, help="Training steps in all (a rerun resumes from OUT/checkpoint)."),
         batch_size: int = typer.Option(32, help="World captions per step."),
         learning_rate: float = typer.Option(None, show_default="0.001", help="AdamW's learning rate."),
         seed: int = typer.Option(0, help="Seeds the decoder's initialisation and every step's captions."),
         lr: float = typer.Option(None, "--lr", hidden=True)) -> None:  # lr: --learning-rate's old name
    """Train (or resume) the T5 decoder around the mini's frozen UMT5 encoder; prints result.json's figures."""
    from .config import train_from_command_line

    train_from_command_line(train, out, None, steps=steps, batch_size=batch_size, learning_rate=learning_rate,
                            lr=lr, seed=seed)


if __name__ == "__main__":
    from ...console import script_app

    app = script_app(__doc__)
    app.command()(main)
    app()
