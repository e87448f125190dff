"""The SynthWorld judge: a small CNN that reads generated frames, and the scores built on it.

Generated frames are blurred and off-palette, so the exact palette parser (`mini.parse`) cannot read
them; this network is trained on rendered frames under blur, noise and colour jitter to predict the
same fields. The scores compare what it reads in a generated video with the clip's ground truth:

- anchor fidelity: PSNR of the generated frame at the true position against the condition image;
- text adherence: the prompt's agent is seen in the video;
- causal order: the object is first seen intact and later changed, never back (cause before effect);
- smoothness: mean absolute change between consecutive frames (lower is smoother).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from PIL import Image, ImageFilter
from torch import nn

from .world import AGENTS, OBJECTS, ROOMS, sample_script

AGENT_CLASSES = ["none", *AGENTS]
OBJECT_CLASSES = list(OBJECTS)
ROOM_CLASSES = list(ROOMS)


def labels(script, t: int) -> dict[str, int]:
    state = script.state(t)
    visible = state.agent_x is not None and -0.2 < state.agent_x < 0.98
    return {
        "object": OBJECT_CLASSES.index(script.object),
        "changed": int(state.object_state == OBJECTS[script.object][1]),
        "agent": AGENT_CLASSES.index(script.agent) if visible else 0,
        "room": ROOM_CLASSES.index(script.room),
    }


def degrade(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a generator does to a frame, roughly: blur, noise, a colour cast."""
    image = Image.fromarray(frame).filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0, 1.8))))
    x = np.asarray(image).astype(np.float32)
    x = x * rng.uniform(0.85, 1.15, size=3) + rng.uniform(-20, 20, size=3)
    x = x + rng.normal(0, rng.uniform(0, 12), size=x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def frame_batch(rng: np.random.Generator, batch: int, size: int = 64, augment: bool = True):
    frames, targets = [], {k: [] for k in ("object", "changed", "agent", "room")}
    for _ in range(batch):
        script = sample_script(rng)
        t = int(rng.integers(script.num_frames))
        frame = script.render(t, size)
        frames.append(degrade(frame, rng) if augment else frame)
        for key, value in labels(script, t).items():
            targets[key].append(value)
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, {k: torch.tensor(v) for k, v in targets.items()}


class SceneJudge(ModelMixin, ConfigMixin):
    """Four conv stages and one linear head per field (object, changed, agent, room)."""

    @register_to_config
    def __init__(self, width: int = 32):
        super().__init__()
        layers, channels = [], 3
        for out in (width, 2 * width, 2 * width, 4 * width):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.GroupNorm(8, out), nn.SiLU()]
            channels = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        sizes = {"object": len(OBJECT_CLASSES), "changed": 2, "agent": len(AGENT_CLASSES), "room": len(ROOM_CLASSES)}
        self.heads = nn.ModuleDict({k: nn.Linear(channels, n) for k, n in sizes.items()})

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(frames)
        return {k: head(h) for k, head in self.heads.items()}

    @classmethod
    def shipped(cls) -> "SceneJudge":
        """The judge trained for this release (`src/reasondiff/mini/weights/judge`, accuracy.json beside it)."""
        from importlib import resources

        return cls.from_pretrained(str(resources.files("reasondiff") / "mini" / "weights" / "judge")).eval()

    @torch.no_grad()
    def read(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 `[T, H, W, 3]` (or floats in [0, 1]) -> per-frame class indices for each field."""
        frames = np.asarray(frames)
        if frames.dtype != np.uint8:
            frames = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
        if x.shape[-1] != 64 or x.shape[-2] != 64:
            x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
        return {k: v.argmax(-1).numpy() for k, v in self(x.to(self.dtype)).items()}


def train_judge(steps: int = 1500, batch_size: int = 64, seed: int = 0, log=print) -> SceneJudge:
    torch.manual_seed(seed)
    judge = SceneJudge()
    optimizer = torch.optim.AdamW(judge.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    for step in range(steps):
        x, y = frame_batch(np.random.default_rng([seed, step]), batch_size)
        out = judge(x)
        loss = sum(F.cross_entropy(out[k], y[k]) for k in out)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % 100 == 0:
            log(f"step {step + 1}: loss {loss.item():.4f}")
    return judge.eval()


def accuracy(judge: SceneJudge, num: int = 1000, seed: int = 12345, augment: bool = True) -> dict[str, float]:
    """Per-field accuracy on held-out renders (a seed the training never used)."""
    x, y = frame_batch(np.random.default_rng(seed), num, augment=augment)
    with torch.no_grad():
        out = judge(x)
    return {k: float((out[k].argmax(-1) == y[k]).float().mean()) for k in out}


@dataclass
class VideoScore:
    anchor_psnr: float
    agent_seen: bool
    causal_order: bool
    smoothness: float


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def score_video(judge: SceneJudge, frames: np.ndarray, condition: np.ndarray, position: int, agent: str) -> VideoScore:
    """Score a generated video `[T, H, W, 3]` uint8 against its case (condition image, true 1-based position, agent)."""
    read = judge.read(frames)
    changed = read["changed"]
    first_changed = np.flatnonzero(changed)
    causal = bool(changed[0] == 0 and len(first_changed) > 0 and changed[first_changed[0]:].all())
    return VideoScore(
        anchor_psnr=psnr(frames[position - 1], condition),
        agent_seen=bool((read["agent"] == AGENT_CLASSES.index(agent)).any()),
        causal_order=causal,
        smoothness=float(np.abs(np.diff(frames.astype(np.float32), axis=0)).mean() / 255.0),
    )


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Train the SynthWorld judge and report its held-out accuracy.")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    judge = train_judge(args.steps, log=lambda m: print(m, flush=True))
    judge.save_pretrained(args.out)
    report = {"steps": args.steps, "degraded": accuracy(judge), "clean": accuracy(judge, augment=False)}
    print(json.dumps(report), flush=True)
    (__import__("pathlib").Path(args.out) / "accuracy.json").write_text(json.dumps(report, indent=2) + "\n")
