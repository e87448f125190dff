"""Load the authors' released ThinkDiff aligners into our `Aligner`.

The authors' LAVIS checkpoints keep the aligner as a `mm_projector` `nn.Sequential` (Linear, GELU,
Linear, RMSNorm), so its weights are `[prefix.]mm_projector.<index>.weight|bias` inside the model's
state dict (often wrapped as `{"model": state_dict}` in a `.pth`). The layers are recognised by shape,
not by index: the 2-D weights are the two linear layers in order, a trailing 1-D weight without a bias
is the RMSNorm. The dimensions are read off the weights; the result is saved as safetensors.

    reasondiff thinkdiff convert authors_checkpoint.pth out/aligner
    python -m reasondiff.thinkdiff.convert authors_checkpoint.pth out/aligner     # the same command
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from .aligner import Aligner

PREFIX = "mm_projector."


def projector_weights(state_dict: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """`mm_projector.<i>.<param>` keys (after any prefix) grouped by layer index, in index order."""
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        if PREFIX not in key:
            continue
        match = re.fullmatch(r"(\d+)\.(weight|bias)", key.split(PREFIX, 1)[1])
        if match is None:
            raise ValueError(f"unexpected aligner key {key!r} (expected mm_projector.<index>.weight|bias)")
        layers.setdefault(int(match.group(1)), {})[match.group(2)] = value
    if not layers:
        raise ValueError("no mm_projector.* keys: this is not a ThinkDiff aligner checkpoint")
    return {str(i): layers[i] for i in sorted(layers)}


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], eps: float = 1e-6) -> Aligner:
    """The authors' `mm_projector.*` weights as our `Aligner` (weights copied, dimensions inferred)."""
    layers = list(projector_weights(state_dict).values())
    linears = [p for p in layers if p["weight"].ndim == 2]
    norms = [p for p in layers if p["weight"].ndim == 1 and "bias" not in p]
    if len(linears) != 2 or len(norms) > 1 or (norms and layers[-1] is not norms[0]):
        raise ValueError(f"expected Linear, Linear[, RMSNorm] in mm_projector, got {len(linears)} linear and "
                         f"{len(norms)} norm layers")
    (hidden, in_dim), (out_dim, _) = linears[0]["weight"].shape, linears[1]["weight"].shape
    aligner = Aligner(in_dim=in_dim, out_dim=out_dim, hidden_dim=hidden, norm_type="rms" if norms else "none",
                      eps=eps)
    ours = {"linear_1.weight": linears[0]["weight"], "linear_1.bias": linears[0]["bias"],
            "linear_2.weight": linears[1]["weight"], "linear_2.bias": linears[1]["bias"]}
    if norms:
        ours["norm.weight"] = norms[0]["weight"]
    aligner.load_state_dict({k: v.float() for k, v in ours.items()}, strict=True)
    return aligner.eval()


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from `.safetensors`, or from a torch file (tensors only; `{"model": ...}` unwrapped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    data = torch.load(path, map_location="cpu", weights_only=True)
    return data.get("model", data) if isinstance(data, dict) else data


def convert_checkpoint(path: str | Path, out_dir: str | Path, eps: float = 1e-6) -> Aligner:
    aligner = convert_state_dict(read_checkpoint(path), eps)
    aligner.save_pretrained(out_dir)  # safetensors
    return aligner


if __name__ == "__main__":  # `reasondiff thinkdiff convert`, one typer command for both spellings
    from ..console import script_app
    from .cli import convert

    app = script_app(__doc__)
    app.command()(convert)
    app()
