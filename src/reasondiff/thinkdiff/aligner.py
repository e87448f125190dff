"""The ThinkDiff aligner network (paper §3.2, Eq. 1): Linear -> GELU -> Linear -> RMSNorm.

It maps VLM token features {x_i} into the input space of an LLM *decoder* -- the space the LLM's
*encoder* writes into. FLUX, CogVideoX (T5) and Wan (UMT5) read their prompts from that encoder,
so aligned features drive them directly.

Why the RMSNorm and its initialisation matter (§3.2, Fig. 7): the scale of VLM features and the
scale the decoder's cross-attention was trained on differ by orders of magnitude (T5 attention has
no 1/sqrt(d) scaling, so the scale enters the softmax logits directly). The encoder's own final
RMSNorm sets that scale, so the aligner ends with an RMSNorm *copied from it*: the aligned tokens
start at the decoder's scale. With a default (ones) or no norm, training does not converge.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


def encoder_final_norm(text_model: nn.Module) -> nn.Module:
    """The final layer norm of a T5/UMT5 encoder, given a T5EncoderModel, UMT5EncoderModel or a
    (U)MT5ForConditionalGeneration."""
    encoder = getattr(text_model, "encoder", text_model)
    norm = getattr(encoder, "final_layer_norm", None)
    if norm is None:
        raise ValueError(f"{type(text_model).__name__} has no encoder.final_layer_norm (expected a T5-family model)")
    return norm


class Aligner(ModelMixin, ConfigMixin):
    r"""
    Maps VLM token features to the input space of a T5-family decoder (Eq. 1).

    Args:
        in_dim: width of the VLM features (Qwen2-VL-7B: 3584; EVA-CLIP ViT-g: 1408).
        out_dim: width of the T5 encoder outputs (T5-XXL, UMT5-XXL: 4096).
        hidden_dim: width between the two linear layers; defaults to `out_dim`.
        norm_type: "rms" (the paper's design) or "none" (the Fig. 7 "w/o RMSNorm" ablation).
        eps: RMSNorm epsilon; `init_norm_from` copies the encoder's.
    """

    @register_to_config
    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None, norm_type: str = "rms",
                 eps: float = 1e-6):
        super().__init__()
        if norm_type not in ("rms", "none"):
            raise ValueError(f"norm_type must be 'rms' or 'none', got {norm_type!r}")
        hidden_dim = hidden_dim or out_dim
        self.linear_1 = nn.Linear(in_dim, hidden_dim)
        self.act = nn.GELU()
        self.linear_2 = nn.Linear(hidden_dim, out_dim)
        # Default initialisation: weight = 1 ("RMSNorm w/ default init." in Fig. 7).
        self.norm = nn.RMSNorm(out_dim, eps=eps) if norm_type == "rms" else nn.Identity()

    @torch.no_grad()
    def init_norm_from(self, text_model: nn.Module) -> Aligner:
        """Copy the T5 encoder's final RMSNorm into ours (§3.2): aligned tokens start at the decoder's scale."""
        if not isinstance(self.norm, nn.RMSNorm):
            raise ValueError("this aligner has no RMSNorm (norm_type='none')")
        source = encoder_final_norm(text_model)
        if source.weight.shape != self.norm.weight.shape:
            width, out_dim = source.weight.shape[0], self.config.out_dim
            raise ValueError(f"encoder norm has width {width}, aligner out_dim is {out_dim}")
        self.norm.weight.copy_(source.weight.to(self.norm.weight))
        eps = getattr(source, "variance_epsilon", getattr(source, "eps", None))
        if eps is not None:
            self.norm.eps = float(eps)
            self.register_to_config(eps=float(eps))
        return self

    @classmethod
    def from_text_encoder(cls, text_model: nn.Module, in_dim: int, hidden_dim: int | None = None) -> Aligner:
        """The paper's aligner for `text_model`'s decoder: out_dim and RMSNorm taken from its encoder."""
        width = encoder_final_norm(text_model).weight.shape[0]
        return cls(in_dim=in_dim, out_dim=width, hidden_dim=hidden_dim).init_norm_from(text_model)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """`[..., in_dim]` VLM features -> `[..., out_dim]` tokens in the T5 encoder's output space (Eq. 1)."""
        x = features.to(self.linear_1.weight.dtype)
        return self.norm(self.linear_2(self.act(self.linear_1(x))))
