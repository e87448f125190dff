"""The SynthWorld judge: a small CNN that reads generated frames back into the world's state.

Generated frames are blurred and off-palette, so the exact palette parser (`mini.palette`) cannot read
them. The judge predicts, per frame, the object and whether it has changed, the agent (or none), the room,
and where the agent and the object stand (the centre of their pixels, as a fraction of the width): the
positions are what lets the measures (`mini.measures`) tell motion from a cut.

Labels come from the rendered pixels, not from the script alone: an agent counts as present when at
least `MIN_AGENT_PIXELS` of its pixels are in the frame, as absent when none are, and frames where
only a sliver shows are left out of the loss (no reader, human or network, can name a 3-pixel sliver).

Judge v2 is trained on what it will read: clean renders under blur, noise, colour casts and JPEG, and
true clips decoded by the mini VAE, with and without noise on the latents (`mini.judge_data`).
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from PIL import Image, ImageFilter
from torch import nn

from .world import AGENTS, OBJECT_COLOURS, OBJECTS, ROOMS, EventScript, sample_script

AGENT_CLASSES = ["none", *AGENTS]
OBJECT_CLASSES = list(OBJECTS)
ROOM_CLASSES = list(ROOMS)
CLASS_FIELDS = ("object", "changed", "agent", "room")
POSITION_FIELDS = ("agent_x", "object_x")
MIN_AGENT_PIXELS = 12
IGNORE = -100  # torch's ignore_index: a label no one could read from the frame


def frame_labels(script: EventScript, t: int, frame: np.ndarray) -> dict[str, float]:
    """Ground truth of rendered frame `t`, measured on its pixels (positions NaN where nothing shows)."""
    return state_labels(script, script.state(t).object_state, frame)


def state_labels(script: EventScript, object_state: str, frame: np.ndarray) -> dict[str, float]:
    """Ground truth of a render of `script`'s scene with the object in `object_state` (any agent position, the
    story's or not: `EventScript.render_state`), measured on its pixels. A sliver of an agent (fewer than
    `MIN_AGENT_PIXELS`) has no class label but has a position: where it shows is readable, and the measures'
    edge rules need a sliver read at the edge, never inside the room."""
    agent_mask = np.all(frame == AGENTS[script.agent][0], axis=-1)
    colour = OBJECT_COLOURS[(script.object, object_state)]
    object_mask = np.all(frame == colour, axis=-1)
    width = frame.shape[1]
    count = int(agent_mask.sum())
    agent = AGENT_CLASSES.index(script.agent) if count >= MIN_AGENT_PIXELS else (0 if count == 0 else IGNORE)
    return {
        "object": OBJECT_CLASSES.index(script.object),
        "changed": int(object_state == OBJECTS[script.object][1]),
        "agent": agent,
        "room": ROOM_CLASSES.index(script.room),
        "agent_x": float(np.nonzero(agent_mask)[1].mean() + 0.5) / width if count else float("nan"),
        "object_x": float(np.nonzero(object_mask)[1].mean() + 0.5) / width if object_mask.any() else float("nan"),
    }


def degrade(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a generator and a video codec do to a frame, roughly: blur, a colour cast, noise, JPEG."""
    image = Image.fromarray(frame).filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0, 1.8))))
    x = np.asarray(image).astype(np.float32)
    x = x * rng.uniform(0.85, 1.15, size=3) + rng.uniform(-20, 20, size=3)
    x = np.clip(x + rng.normal(0, rng.uniform(0, 12), size=x.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        buffer = io.BytesIO()
        Image.fromarray(x).save(buffer, format="JPEG", quality=int(rng.integers(25, 90)))
        x = np.asarray(Image.open(buffer).convert("RGB"))
    return x


def to_input(frames: np.ndarray) -> torch.Tensor:
    """uint8 `[N, H, W, 3]` -> the judge's input `[N, 3, 64, 64]` in [-1, 1] (any size is resized to 64x64)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1
    if x.shape[-2:] != (64, 64):
        x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    return x


class SceneJudge(ModelMixin, ConfigMixin):
    """Four conv stages; one linear head per field over the final 4x4 map (kept, not pooled: positions need it)."""

    @register_to_config
    def __init__(self, width: int = 32):
        super().__init__()
        layers, channels = [], 3
        for out in (width, 2 * width, 2 * width, 4 * width):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.GroupNorm(8, out), nn.SiLU()]
            channels = out
        self.features = nn.Sequential(*layers, nn.Flatten())
        sizes = {"object": len(OBJECT_CLASSES), "changed": 2, "agent": len(AGENT_CLASSES), "room": len(ROOM_CLASSES),
                 "agent_x": 1, "object_x": 1}
        self.heads = nn.ModuleDict({k: nn.Linear(channels * 16, n) for k, n in sizes.items()})

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(frames)
        return {k: head(h).squeeze(-1) if k in POSITION_FIELDS else head(h) for k, head in self.heads.items()}

    @classmethod
    def shipped(cls) -> "SceneJudge":
        """The judge trained for this release (`src/reasondiff/mini/weights/judge`, accuracy.json beside it)."""
        from importlib import resources

        return cls.from_pretrained(str(resources.files("reasondiff") / "mini" / "weights" / "judge")).eval()

    @torch.no_grad()
    def read(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 `[T, H, W, 3]` -> per frame: class indices (object, changed, agent, room) and positions."""
        frames = np.asarray(frames)
        if frames.dtype != np.uint8:
            frames = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
        out = self(to_input(frames).to(self.dtype))
        return {k: (v.float().numpy() if k in POSITION_FIELDS else v.argmax(-1).numpy()) for k, v in out.items()}


def judge_loss(out: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
    loss = out["object"].new_zeros(())
    for k in CLASS_FIELDS:  # a batch whose labels are all unreadable adds nothing (cross-entropy would be NaN)
        if (target[k] != IGNORE).any():
            loss = loss + F.cross_entropy(out[k], target[k], ignore_index=IGNORE)
    for k in POSITION_FIELDS:  # positions count where the thing is in view
        seen = torch.isfinite(target[k])
        if seen.any():
            loss = loss + 10 * F.smooth_l1_loss(out[k][seen], target[k][seen], beta=0.05)
    return loss


def stack_labels(rows: list[dict[str, float]]) -> dict[str, torch.Tensor]:
    return {k: torch.tensor([r[k] for r in rows], dtype=torch.float32 if k in POSITION_FIELDS else torch.long)
            for k in (*CLASS_FIELDS, *POSITION_FIELDS)}
