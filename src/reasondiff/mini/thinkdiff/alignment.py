"""The aligner's data and what the T5 decoder reads back from aligned tokens (ThinkDiff-mini, issue #19).

The aligner is trained with the ordinary `reasondiff thinkdiff extract` / `train` on *captioning only*: the
mini VLM describing training-scene stills (`caption_data` writes them as the JSONL `extract` reads). Whether
its in-context answers still come through is then measured here, before any image is drawn: the VLM answers
(a held-out still's describe prompt, or a bench episode), its token features go through the aligner, and the
frozen T5 decoder writes what it reads from the aligned tokens as if they were its encoder's states.

    same_as_vlm   the decoder writes the VLM's own answer exactly
    right         what it writes names the target (captions: the still's caption exactly; episodes: both task
                  attributes, as the bench judges the VLM's text)

Those read *all* the answer's tokens, as the diffusion decoder does. That is what an aligner trained without
masking (or on input-token features) learned: every feature in, the whole text out. An aligner trained with the
paper's random masked training (§3.3, `thinkdiff.masking`) learned something else: the features of the first k
tokens in, the *rest* of the text out (k drawn in [1, n-1], never n). Given all n features, its decoder reads them
as it read n-1 and writes the answer's last word ("a cat by the intact vase in the kitchen" -> "kitchen" on the
2,000-caption run), so its `right` is 0 by construction, not a fault. The read-back it was trained for is the
continuation, so every token-aligned answer is also read that way, at every split k in [1, n-1]:

    continued_same_as_vlm   the VLM's first k tokens' text followed by what the decoder writes from their aligned
                            features is the VLM's answer exactly (mean over k, then over answers)
    continued_right         ... names the target, as `right` (mean over k, then over answers)
    first_token_right       the same at k = 1 only: all but the first token written from the decoder's reading

    python -m reasondiff.mini.thinkdiff.alignment data OUT --count 2000
    python -m reasondiff.mini.thinkdiff.alignment readback --vlm V --aligner A --t5 T --out R.json [--source input]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@torch.no_grad()
def decode_prefixes(t5, tokenizer, tokens: torch.Tensor, max_new_tokens: int = 32) -> list[str]:
    """What the T5 decoder writes from each prefix `tokens[:k]`, k = 1 .. n-1, of aligned tokens `[n, D]` (greedy,
    one padded batch: padding is masked out of the cross-attention)."""
    from transformers.modeling_outputs import BaseModelOutput

    n = tokens.shape[0]
    if n < 2:
        return []
    batch = tokens[None].expand(n - 1, -1, -1)
    mask = (torch.arange(n)[None] < torch.arange(1, n)[:, None]).long()
    out = t5.generate(encoder_outputs=BaseModelOutput(last_hidden_state=batch * mask[..., None]),
                      attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False)
    return [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]


def completed(text: str, cut: int, written: str) -> str:
    """The answer's first `cut` characters followed by what the decoder wrote for the rest. Masked training's target
    is `text[cut:].strip()`, so the space it stripped (if any) is put back between the two."""
    return text[:cut] + (" " if text[cut:cut + 1].isspace() and written else "") + written


@dataclass
class Reading:
    vlm: str  # the VLM's answer
    full: str  # what the T5 decoder writes from all the answer's aligned tokens
    continued: list[str]  # for k = 1 .. n-1: the answer's first k tokens' text + what it writes from their tokens


def read_one(vlm, proc, aligner, t5, tokenizer, items: list, source: str = "generated") -> Reading:
    """The VLM's answer and what the T5 decoder reads from its aligned features: all of them, and every prefix
    (token-aligned features only; input-token features have no split)."""
    feats = lvlm_features(vlm, proc, items, 24, source=source)
    tokens = aligner(feats.features[None])
    continued = []
    if feats.token_aligned:
        continued = [completed(feats.text, int(feats.offsets[k]), w)
                     for k, w in enumerate(decode_prefixes(t5, tokenizer, tokens[0]), start=1)]
    return Reading(feats.text, decode_tokens(t5, tokenizer, tokens), continued)


def _scores(readings: list[Reading], is_right) -> dict:
    """`same_as_vlm`/`right` of the full read-back; `continued_*` and `first_token_right` where prefixes exist."""
    out = {"same_as_vlm": float(np.mean([r.full == r.vlm for r in readings])),
           "right": float(np.mean([is_right(i, r.full) for i, r in enumerate(readings)]))}
    split = [(i, r) for i, r in enumerate(readings) if r.continued]
    if split:
        out["continued_same_as_vlm"] = float(np.mean([np.mean([c == r.vlm for c in r.continued]) for _, r in split]))
        out["continued_right"] = float(np.mean([np.mean([is_right(i, c) for c in r.continued]) for i, r in split]))
        out["first_token_right"] = float(np.mean([is_right(i, r.continued[0]) for i, r in split]))
    return out


def read_back(vlm, proc, aligner, t5, tokenizer, cases: int = 25, seed: int = 1, source: str = "generated",
              shots=(1, 2, 4)) -> dict:
    """Read-back on 4 x `cases` held-out stills (captioning) and `cases` bench episodes per task and shot."""
    from .bench import mentioned, right
    from .tasks import TABLE, episodes, target
    from .vlm import INSTRUCTION

    rng = np.random.default_rng([seed, 7])
    stills = [random_still(rng) for _ in range(4 * cases)]
    captions = [caption(s.attributes()) for s in stills]
    said = [read_one(vlm, proc, aligner, t5, tokenizer, [PIL.Image.fromarray(s.render(64)), DESCRIBE_PROMPTS[0]],
                     source) for s in stills]
    result = {"captions": {**_scores(said, lambda i, text: text == captions[i]),
                           "examples": [[r.vlm, r.full, r.continued, c] for r, c in zip(said[:3], captions,
                                                                                        strict=False)]}}
    for shot in shots:
        prompts = [p for t in TABLE.order for p in episodes(t, shot, cases, seed)]
        said = [read_one(vlm, proc, aligner, t5, tokenizer, p.items(INSTRUCTION), source) for p in prompts]
        result[f"episodes_{shot}shot"] = {
            **_scores(said, lambda i, text, prompts=prompts: right(mentioned(text), target(prompts[i]))),
            "vlm_right": float(np.mean([right(mentioned(r.vlm), target(p)) for r, p in zip(said, prompts,
                                                                                           strict=True)])),
            "examples": [[p.texts, r.vlm, r.full, r.continued] for r, p in list(zip(said, prompts, strict=True))[:3]]}
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
