"""The aligner's data and what the T5 decoder reads back from aligned tokens (ThinkDiff-mini, issue #19).

The aligner is trained with the ordinary `reasondiff thinkdiff extract` / `train` on *captioning only*: the
mini VLM describing training-scene stills (`caption_data` writes them as the JSONL `extract` reads). Whether
its in-context answers still come through is then measured here, before any image is drawn: the VLM answers
(a held-out still's describe prompt, or a bench episode), its token features go through the aligner, and the
frozen T5 decoder writes what it reads from the aligned tokens as if they were its encoder's states.

    same_as_vlm   the decoder writes the VLM's own answer exactly
    right         what it writes names the target (captions: the still's caption exactly; episodes: both task
                  attributes, as the bench judges the VLM's text)

    python -m reasondiff.mini.thinkdiff.alignment data OUT --count 2000
    python -m reasondiff.mini.thinkdiff.alignment readback --vlm V --aligner A --t5 T --out R.json [--source input]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import typer

from ...thinkdiff.features import DESCRIBE_PROMPTS, lvlm_features
from .stills import caption, random_still

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


def caption_data(out: str | Path, count: int, seed: int = 0) -> Path:
    """`count` training-scene stills as OUT/images/*.png and OUT/data.jsonl ({"image", "caption"}), for
    `thinkdiff extract` (which draws one of the paper's describe prompts per image). Idempotent."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 31])
    rows = []
    for i in range(count):
        still = random_still(rng, held_out=False)
        name = f"images/{i:05d}.png"
        if not (out / name).is_file():
            PIL.Image.fromarray(still.render(64)).save(out / name)
        rows.append(json.dumps({"image": name, "caption": caption(still.attributes())}))
    (out / "data.jsonl").write_text("\n".join(rows) + "\n")
    return out / "data.jsonl"


@torch.no_grad()
def decode_tokens(t5, tokenizer, tokens: torch.Tensor, max_new_tokens: int = 32) -> str:
    """What the T5 decoder writes reading `tokens` `[1, n, D]` as its encoder's output (greedy)."""
    from transformers.modeling_outputs import BaseModelOutput

    out = t5.generate(encoder_outputs=BaseModelOutput(last_hidden_state=tokens),
                      attention_mask=torch.ones(tokens.shape[:2], dtype=torch.long), max_new_tokens=max_new_tokens,
                      do_sample=False)
    return tokenizer.decode(out[0], skip_special_tokens=True).strip()


def read_one(vlm, proc, aligner, t5, tokenizer, items: list, source: str = "generated") -> tuple[str, str]:
    """(the VLM's answer, what the T5 decoder reads from its aligned features)."""
    feats = lvlm_features(vlm, proc, items, 24, source=source)
    return feats.text, decode_tokens(t5, tokenizer, aligner(feats.features[None]))


def read_back(vlm, proc, aligner, t5, tokenizer, cases: int = 25, seed: int = 1, source: str = "generated",
              shots=(1, 2, 4)) -> dict:
    """Read-back on 4 x `cases` held-out stills (captioning) and `cases` bench episodes per task and shot."""
    from .bench import mentioned, right
    from .tasks import TABLE, episodes, target
    from .vlm import INSTRUCTION

    rng = np.random.default_rng([seed, 7])
    stills = [random_still(rng) for _ in range(4 * cases)]
    rows = [(*read_one(vlm, proc, aligner, t5, tokenizer, [PIL.Image.fromarray(s.render(64)), DESCRIBE_PROMPTS[0]],
                       source), caption(s.attributes())) for s in stills]
    result = {"captions": {"same_as_vlm": float(np.mean([a == b for a, b, _ in rows])),
                           "right": float(np.mean([b == c for _, b, c in rows])), "examples": rows[:3]}}
    for shot in shots:
        prompts = [p for t in TABLE.order for p in episodes(t, shot, cases, seed)]
        said = [read_one(vlm, proc, aligner, t5, tokenizer, p.items(INSTRUCTION), source) for p in prompts]
        result[f"episodes_{shot}shot"] = {
            "same_as_vlm": float(np.mean([a == b for a, b in said])),
            "right": float(np.mean([right(mentioned(b), target(p)) for (_, b), p in zip(said, prompts, strict=True)])),
            "vlm_right": float(np.mean([right(mentioned(a), target(p)) for (a, _), p in zip(said, prompts,
                                                                                           strict=True)])),
            "examples": [[p.texts, a, b] for (a, b), p in list(zip(said, prompts, strict=True))[:3]]}
    return result


@app.command()
def data(out: Path, count: int = typer.Option(2000), seed: int = typer.Option(0)) -> None:
    """Write the captioning data the aligner is trained on."""
    typer.echo(caption_data(out, count, seed))


@app.command()
def readback(vlm: Path = typer.Option(...), aligner: Path = typer.Option(...), t5: Path = typer.Option(...),
             out: Path = typer.Option(...), source: str = typer.Option("generated", help="generated or input."),
             cases: int = typer.Option(25, help="Episodes per task and shot (and 4x as many stills)."),
             seed: int = typer.Option(1)) -> None:
    """What the T5 decoder reads back from the aligned tokens, as JSON."""
    from transformers import AutoTokenizer, UMT5ForConditionalGeneration

    from ...thinkdiff.aligner import Aligner
    from .vlm import load

    model, proc = load(vlm)
    result = read_back(model, proc, Aligner.from_pretrained(aligner).eval(),
                       UMT5ForConditionalGeneration.from_pretrained(t5).eval(), AutoTokenizer.from_pretrained(t5),
                       cases, seed, source)
    out.write_text(json.dumps(result, indent=1) + "\n")
    typer.echo(json.dumps({k: {m: v for m, v in r.items() if m != "examples"} for k, r in result.items()}))


if __name__ == "__main__":
    app()
