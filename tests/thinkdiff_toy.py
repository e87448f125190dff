"""ThinkDiff's toy world for convergence checks in tests: captions, rendered shapes, stand-in LVLM features,
and a briefly pretrained tiny T5 (moved out of `reasondiff.thinkdiff.tiny`, which only builds components)."""

from __future__ import annotations

import torch

from reasondiff.thinkdiff.features import TokenFeatures
from reasondiff.thinkdiff.masking import split_caption
from reasondiff.thinkdiff.tiny import VLM_DIM

COLORS = ["red", "green", "blue", "yellow", "white", "black", "purple", "orange", "pink", "brown"]
SHAPES = ["square", "circle", "triangle", "star"]


def toy_captions(n: int, seed: int = 0) -> list[str]:
    """Captions of the toy world: 'a red square on a blue background', with a few templates."""
    g = torch.Generator().manual_seed(seed)

    def pick(xs):
        return xs[int(torch.randint(len(xs), (1,), generator=g))]

    out = []
    for _ in range(n):
        color, shape, bg = pick(COLORS), pick(SHAPES), pick(COLORS)
        size = pick(["small", "big"])
        out.append(pick([f"a {color} {shape} on a {bg} background",
                         f"a {size} {color} {shape} on a {bg} background",
                         f"the {shape} is {color} and the background is {bg}"]))
    return out


def toy_image(caption: str, size: int = 32):
    """Render a toy caption: background colour, then the shape's colour in the middle."""
    import PIL.Image
    import PIL.ImageDraw

    rgb = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (30, 60, 220), "yellow": (230, 220, 40),
           "white": (245, 245, 245), "black": (10, 10, 10), "purple": (130, 40, 160), "orange": (240, 140, 20),
           "pink": (240, 150, 190), "brown": (120, 70, 30)}
    words = caption.split()
    colors = [w for w in words if w in rgb]
    shape = next(w for w in words if w in SHAPES)
    fg, bg = (colors[0], colors[-1])
    img = PIL.Image.new("RGB", (size, size), rgb[bg])
    draw = PIL.ImageDraw.Draw(img)
    r = size // 4 if "small" in words else size // 3
    c = size // 2
    box = [c - r, c - r, c + r, c + r]
    if shape == "square":
        draw.rectangle(box, fill=rgb[fg])
    elif shape == "circle":
        draw.ellipse(box, fill=rgb[fg])
    elif shape == "triangle":
        draw.polygon([(c, c - r), (c - r, c + r), (c + r, c + r)], fill=rgb[fg])
    else:
        draw.polygon([(c, c - r), (c + r // 3, c), (c + r, c), (c, c + r), (c - r, c), (c - r // 3, c)], fill=rgb[fg])
    return img


def toy_lvlm_features(captions: list[str], dim: int = VLM_DIM, gain: float = 4.0, seed: int = 0):
    """Stand-ins for an LVLM's generated-token features of each caption, one per word token.

    Feature t mixes word t's embedding, the mean of the words before it (an autoregressive model's
    state) and an "image" vector -- the mean embedding of every word of the caption, which the LVLM
    has seen as an image before writing a word. That is what makes the words after a split point
    predictable from the features before it. Features are RMS-normalised and scaled by a per-channel
    gain around `gain` (as after an LVLM's final RMSNorm, whose scale is far from T5's). `offsets`
    give each token's characters in the text.
    """
    vocab = sorted({w for c in captions for w in c.split()})
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(len(vocab), dim, generator=g)
    gains = gain * (1 + 0.3 * torch.randn(dim, generator=g)).abs()
    out = []
    for caption in captions:
        words = caption.split()
        e = table[[vocab.index(w) for w in words]]
        context = torch.cumsum(e, 0) / torch.arange(1, len(words) + 1)[:, None]
        x = e + 0.5 * torch.cat([torch.zeros(1, dim), context[:-1]]) + e.mean(0, keepdim=True)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * gains
        offsets = [0]
        for i, w in enumerate(words):
            offsets.append(offsets[-1] + len(w) + (1 if i else 0))
        out.append(TokenFeatures(features=x, text=caption, token_ids=torch.arange(len(words)),
                                 offsets=torch.tensor(offsets)))
    return out


def pretrain_t5_toy(model, tokenizer, captions: list[str], steps: int = 150, batch_size: int = 32, lr: float = 3e-3,
                    seed: int = 0):
    """Briefly pretrain a tiny T5 on the toy captions, its encoder's final norm frozen.

    A real T5 decoder has learnt to read its encoder's outputs at the scale the encoder's final norm
    sets; this gives the tiny one the same property, which the Fig. 7 ablation depends on.
    """
    g = torch.Generator().manual_seed(seed)
    model.train()
    params = [p for n, p in model.named_parameters() if n != "encoder.final_layer_norm.weight"]
    model.encoder.final_layer_norm.weight.requires_grad_(False)
    opt = torch.optim.AdamW(params, lr=lr)
    for _ in range(steps):
        idx = torch.randint(len(captions), (batch_size,), generator=g).tolist()
        # half span-continuation (prefix -> rest), half reconstruction (caption -> caption): like T5's
        # span corruption, the decoder learns both to continue and to read content from the encoder.
        pairs = [split_caption(captions[i], g) if b % 2 else (captions[i], captions[i]) for b, i in enumerate(idx)]
        enc = tokenizer([p for p, _ in pairs], padding=True, return_tensors="pt")
        tgt = tokenizer([t for _, t in pairs], padding=True, return_tensors="pt")
        labels = tgt["input_ids"].masked_fill(tgt["attention_mask"] == 0, -100)
        loss = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.encoder.final_layer_norm.weight.requires_grad_(True)
    return model.eval()
