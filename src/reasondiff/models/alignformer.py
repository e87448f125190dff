"""AlignFormer: the paper's Multi-stage Temporal Anchor Attention (MTAA), §3.3, Eq. 3-5, Algorithm 1.

It turns the one latent frame we know (the condition image, encoded by the VAE at its narrated
position) plus one narrative per latent frame into a latent for *every* frame: the
reasoning-enhanced latents c* that the DiT reads in its condition channels.

Reading guide (paper -> code):
  Eq. 3   c~_i = phi_proj(Flatten(c_i)) + pe_time      `anchor_proj` + `pos_embed_2d` + `pos_embed_1d`
          h~_j = h_j + pe_time(j)                      `narrative_proj` + `pos_embed_1d`
  Alg. 1  c* <- repeat(c_i, f); c* <- Self-Attn(c*)   `self_attn` over all frames' tokens jointly
  Eq. 4-5 Softmax(Q_i K_j^T / sqrt d) V_j, two stages  `cross_blocks` (frame k attends to narrative k)
  Alg. 1  c*_i <- c_i                                  `torch.where` at the end, bit-exact

Choices the paper leaves open, and why we made them:
- Each repeated copy of the anchor carries the sin-cos embedding of its signed offset k - i from the
  anchor (the anchor copy gets pe(0)). Eq. 3 adds a temporal embedding to the anchor; with a single
  absolute pe(i) every copy would be identical and the self-attention could not tell frames apart.
  The absolute frame index k reaches frame k through its narrative tokens (h~_k), as in Eq. 3.
- The self-attention runs over all frames' tokens at once, so frames are predicted jointly. The
  authors' public code predicts each frame alone; the paper's Algorithm 1 does not.
- The output is a residual on the repeated anchor through a zero-initialised projection: an
  untrained AlignFormer returns "the anchor everywhere", the safest guidance for a pretrained Wan
  I2V model, and training moves away from it only as far as the data asks.
- A frame whose narrative mask is all False (no tokens) attends to all its tokens instead of to
  none, which would make softmax produce NaN.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import get_1d_sincos_pos_embed_from_grid, get_2d_sincos_pos_embed_from_grid
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


def pos_embed_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """Fixed sin-cos embedding of (possibly negative) temporal positions, any shape -> shape + (dim,)."""
    emb = get_1d_sincos_pos_embed_from_grid(dim, positions.reshape(-1).double(), dtype=torch.float64)
    return emb.reshape(*positions.shape, dim)


def pos_embed_2d(dim: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """Fixed 2-D sin-cos embedding of an (height x width) token grid in row-major order -> [height*width, dim]."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float64),
        torch.arange(width, device=device, dtype=torch.float64),
        indexing="ij",
    )
    grid = torch.stack([xs, ys]).reshape(2, 1, height, width)  # diffusers' convention: w first
    return get_2d_sincos_pos_embed_from_grid(dim, grid)


class CrossAttentionBlock(nn.Module):
    """One MTAA stage (Eq. 4-5): anchor tokens of frame k query narrative tokens of frame k, then an FFN."""

    def __init__(self, dim: int, num_heads: int, ff_mult: int, eps: float):
        super().__init__()
        self.norm_query = nn.LayerNorm(dim, eps=eps)
        self.norm_context = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(query_dim=dim, heads=num_heads, dim_head=dim // num_heads, out_bias=True)
        self.norm_ff = nn.LayerNorm(dim, eps=eps)
        self.ff = FeedForward(dim, mult=ff_mult, activation_fn="gelu-approximate")

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm_query(x), self.norm_context(context), attention_mask=context_mask)
        return x + self.ff(self.norm_ff(x))


class AlignFormer(ModelMixin, ConfigMixin):
    r"""
    Predicts reasoning-enhanced latents c* for every latent frame from one anchor latent and frame-wise narratives.

    Args:
        in_channels: latent channels of the video VAE (16 for Wan2.1).
        patch_size: spatial patch of the anchor tokens; 2 matches the Wan DiT's (1, 2, 2) patches.
        text_dim: width of the narrative embeddings (4096 for UMT5-XXL).
        hidden_dim: token width inside the AlignFormer.
        num_heads: attention heads (8 in the paper, Appendix A.1).
        num_cross_stages: MTAA cross-attention stages (2 in the paper).
        ff_mult: hidden width of each feed-forward layer, as a multiple of `hidden_dim`.
        eps: LayerNorm epsilon.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        in_channels: int = 16,
        patch_size: int = 2,
        text_dim: int = 4096,
        hidden_dim: int = 1024,
        num_heads: int = 8,
        num_cross_stages: int = 2,
        ff_mult: int = 4,
        eps: float = 1e-6,
    ):
        super().__init__()
        if hidden_dim % num_heads or hidden_dim % 4:
            raise ValueError(f"hidden_dim={hidden_dim} must be divisible by num_heads={num_heads} and by 4")
        # phi_proj(Flatten(c_i)) of Eq. 3: a strided conv is the patchify-and-project of DiT/Wan.
        self.anchor_proj = nn.Conv2d(in_channels, hidden_dim, kernel_size=patch_size, stride=patch_size)
        self.narrative_proj = nn.Linear(text_dim, hidden_dim)

        self.norm_self = nn.LayerNorm(hidden_dim, eps=eps)
        self.self_attn = Attention(query_dim=hidden_dim, heads=num_heads, dim_head=hidden_dim // num_heads, out_bias=True)
        self.cross_blocks = nn.ModuleList(
            [CrossAttentionBlock(hidden_dim, num_heads, ff_mult, eps) for _ in range(num_cross_stages)]
        )

        self.norm_out = nn.LayerNorm(hidden_dim, eps=eps)
        self.proj_out = nn.Linear(hidden_dim, patch_size * patch_size * in_channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

        self.gradient_checkpointing = False

    def _check_inputs(self, anchor_latent, anchor_index, narrative_embeds, narrative_mask):
        cfg = self.config
        if anchor_latent.ndim != 4 or anchor_latent.shape[1] != cfg.in_channels:
            raise ValueError(f"anchor_latent must be [B, {cfg.in_channels}, h, w], got {tuple(anchor_latent.shape)}")
        batch, _, height, width = anchor_latent.shape
        if height % cfg.patch_size or width % cfg.patch_size:
            raise ValueError(f"latent size {height}x{width} is not divisible by patch_size={cfg.patch_size}")
        if narrative_embeds.ndim != 4 or narrative_embeds.shape[0] != batch or narrative_embeds.shape[-1] != cfg.text_dim:
            raise ValueError(
                f"narrative_embeds must be [B={batch}, F, L, {cfg.text_dim}], got {tuple(narrative_embeds.shape)}"
            )
        num_frames = narrative_embeds.shape[1]
        if anchor_index.shape != (batch,):
            raise ValueError(f"anchor_index must have shape [{batch}], got {tuple(anchor_index.shape)}")
        out_of_range = anchor_index.device.type != "meta" and ((anchor_index < 0) | (anchor_index >= num_frames)).any()
        if anchor_index.dtype.is_floating_point or out_of_range:  # meta tensors (the memory plan) hold no values
            raise ValueError(f"anchor_index must hold latent indices in 0..{num_frames - 1}, got {anchor_index.tolist()}")
        if narrative_mask is not None and narrative_mask.shape != narrative_embeds.shape[:3]:
            raise ValueError(
                f"narrative_mask must be [B, F, L] = {tuple(narrative_embeds.shape[:3])}, got {tuple(narrative_mask.shape)}"
            )

    def forward(
        self,
        anchor_latent: torch.Tensor,
        anchor_index: torch.Tensor,
        narrative_embeds: torch.Tensor,
        narrative_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r"""
        Args:
            anchor_latent: `[B, C, h, w]`, the VAE latent c_i of the condition image (encoded on its own).
            anchor_index: `[B]` long, the latent index i of the anchor (see `reasondiff.frames`).
            narrative_embeds: `[B, F, L, D]`, text-encoder embeddings h of each latent frame's narrative.
            narrative_mask: `[B, F, L]`, True where a narrative token is real; None means all real.

        Returns:
            `[B, C, F, h, w]` latents c*, with c*[b, :, anchor_index[b]] == anchor_latent[b] exactly.
        """
        self._check_inputs(anchor_latent, anchor_index, narrative_embeds, narrative_mask)
        batch, channels, height, width = anchor_latent.shape
        num_frames, seq_len = narrative_embeds.shape[1:3]
        p, dim = self.config.patch_size, self.config.hidden_dim
        grid_h, grid_w = height // p, width // p
        num_tokens = grid_h * grid_w
        device, dtype = anchor_latent.device, self.anchor_proj.weight.dtype
        frames = torch.arange(num_frames, device=device)

        # Eq. 3, anchor side: patchify + project, 2-D position, and each copy's offset from the anchor in time.
        anchor = self.anchor_proj(anchor_latent.to(dtype)).flatten(2).transpose(1, 2)  # [B, N, D]
        anchor = anchor + pos_embed_2d(dim, grid_h, grid_w, device).to(dtype)
        offsets = frames[None, :] - anchor_index[:, None].to(device)  # [B, F]
        x = anchor[:, None] + pos_embed_1d(dim, offsets).to(dtype)[:, :, None]  # [B, F, N, D]

        # Eq. 3, narrative side: h~_k = proj(h_k) + pe_time(k).
        context = self.narrative_proj(narrative_embeds.to(dtype)) + pos_embed_1d(dim, frames).to(dtype)[None, :, None]
        context = context.reshape(batch * num_frames, seq_len, dim)
        if narrative_mask is None:
            narrative_mask = torch.ones(batch, num_frames, seq_len, dtype=torch.bool, device=device)
        mask = narrative_mask.to(device=device, dtype=torch.bool).reshape(batch * num_frames, seq_len)
        mask = mask | ~mask.any(dim=-1, keepdim=True)  # an empty narrative attends to all tokens, not to none
        mask = mask[:, None, :]  # [B*F, 1, L], broadcast over queries and heads

        # Algorithm 1, line 5: one self-attention over every frame's anchor tokens together.
        x = x.reshape(batch, num_frames * num_tokens, dim)
        x = x + self._run(self.self_attn, self.norm_self(x))
        # Eq. 4-5, two MTAA stages: frame k's tokens attend to frame k's narrative only.
        x = x.reshape(batch * num_frames, num_tokens, dim)
        for block in self.cross_blocks:
            x = self._run(block, x, context, mask)

        delta = self.proj_out(self.norm_out(x))  # [B*F, N, p*p*C]
        delta = delta.reshape(batch, num_frames, grid_h, grid_w, p, p, channels)
        delta = delta.permute(0, 6, 1, 2, 4, 3, 5).reshape(batch, channels, num_frames, height, width)

        anchor_repeated = anchor_latent[:, :, None].to(delta.dtype)
        latents = anchor_repeated + delta
        # Algorithm 1, line 8: c*_i <- c_i, bit-exact (a select, not an arithmetic blend).
        is_anchor = (frames[None, :] == anchor_index[:, None].to(device))[:, None, :, None, None]
        return torch.where(is_anchor, anchor_repeated, latents)

    def _run(self, module: nn.Module, *args):
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(module, *args)
        return module(*args)
