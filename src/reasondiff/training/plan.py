"""`reasondiff train --config FILE --plan`: per-GPU memory of a training config, before renting the GPUs.

Nothing is loaded or computed. The stage's networks are built on PyTorch's meta device at the config's
real sizes (the DiT's config.json only), so parameter counts and dtypes are those of the run: frozen
weights in the compute dtype except diffusers' `_keep_in_fp32_modules`, trained weights as fp32
masters, AdamW's two fp32 moments and step counter per trained tensor. Activations are the bytes the
forward pass saves for backward, counted with `saved_tensors_hooks` on a meta-device forward at the
clip size, with attention saving what flash attention saves (q, k, v, output, log-sum-exp) rather
than the S x S matrix of the math kernel. What the plan leaves out: allocator fragmentation, CUDA
context (~0.5-1 GB), communication buckets, and transient buffers inside one layer's backward.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import TrainConfig
from .distributed import per_device_batch
from .modules import cast_frozen

GIB = 1024**3
IMAGE_TOKENS = {"tiny": 17}  # CLIP tokens per image; Wan2.1's ViT-H/14 at 224 px gives 257
STRATEGIES = ("DDP", "FSDP", "ZeRO-2", "ZeRO-3")
# The hub's transformer/config.json of Wan2.1-I2V-14B (diffusers' conversion values), for planning offline.
WAN_I2V_14B = dict(patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=36,
                   out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True,
                   qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=1280, added_kv_proj_dim=5120,
                   rope_max_seq_len=1024)
KNOWN_DITS = {"Wan-AI/Wan2.1-I2V-14B-480P-Diffusers": WAN_I2V_14B, "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers": WAN_I2V_14B}


@dataclass
class Footprint:
    """Bytes of one replica of the stage, before any sharding; activations per sample."""

    frozen: int  # inside the prepared module: FSDP and ZeRO-3 shard it
    frozen_outside: int  # stage 2's DiT and LoRA run outside the prepared module: whole on every GPU
    trainable: int
    optimizer: int
    activations: int
    activations_checkpointed: int
    largest_block: int


class _FlashLike(torch.autograd.Function):
    """Stands in for scaled_dot_product_attention on meta tensors, saving what flash attention saves."""

    @staticmethod
    def forward(ctx, query, key, value):
        out = query.new_empty(*query.shape[:-1], value.shape[-1])
        ctx.save_for_backward(query, key, value, out, query.new_empty(query.shape[:-1], dtype=torch.float32))
        return out

    @staticmethod
    def backward(ctx, grad):  # never run: the plan only counts what the forward saves
        raise NotImplementedError


@contextlib.contextmanager
def counting_saved_tensors(totals: dict, blocks=(), flash_like: bool = True):
    """Record in `totals` (storage -> bytes) every tensor autograd saves, plus the inputs of `blocks`: gradient
    checkpointing keeps those alive for the recomputation without saving them through autograd. Views of one
    storage count once, at the storage's size (meta storages are told apart the same way)."""

    def note(tensor):
        if isinstance(tensor, torch.Tensor):
            storage = tensor.untyped_storage()
            totals[storage._cdata] = storage.nbytes()
        return tensor

    def note_inputs(module, args, kwargs):
        for value in (*args, *kwargs.values()):
            for tensor in value if isinstance(value, (tuple, list)) else (value,):
                note(tensor)

    handles = [block.register_forward_pre_hook(note_inputs, with_kwargs=True) for block in blocks]
    original = F.scaled_dot_product_attention
    if flash_like:
        F.scaled_dot_product_attention = lambda query, key, value, **_: _FlashLike.apply(query, key, value)
    try:
        with torch.autograd.graph.saved_tensors_hooks(note, lambda tensor: tensor):
            yield
    finally:
        F.scaled_dot_product_attention = original
        for handle in handles:
            handle.remove()


def _transformer_config(cfg: TrainConfig) -> dict:
    from diffusers import WanTransformer3DModel

    from ..models import tiny_wan

    if cfg.transformer_config is not None:
        return dict(cfg.transformer_config)
    if cfg.model == "tiny":
        return tiny_wan.transformer_config()
    try:
        return dict(WanTransformer3DModel.load_config(cfg.model, subfolder="transformer"))
    except (OSError, ValueError):  # offline and not cached: a model we know the shape of still plans
        if cfg.model in KNOWN_DITS:
            return dict(KNOWN_DITS[cfg.model])
        raise ValueError(f"--plan needs {cfg.model}/transformer/config.json: not found locally or on the hub")


def _stage_networks(cfg: TrainConfig, dtype: torch.dtype, latent_channels: int):
    """The stage's DiT (with LoRA) and AlignFormer on the meta device, trainable flags as the trainer sets them."""
    from diffusers import WanTransformer3DModel
    from peft import LoraConfig

    from ..models.alignformer import AlignFormer

    with torch.device("meta"):
        transformer = WanTransformer3DModel.from_config(_transformer_config(cfg))
        transformer.requires_grad_(cfg.stage == 0)
        alignformer = None
        if cfg.stage > 0 and cfg.conditioning != "no_enhanced_latents":
            alignformer = AlignFormer(in_channels=latent_channels, text_dim=transformer.config.text_dim,
                                      **cfg.alignformer.model_dump())
        if cfg.stage > 0:
            transformer.add_adapter(LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha,
                                               target_modules=cfg.lora_target_modules))
        if cfg.stage == 2:
            transformer.requires_grad_(False)
    cast_frozen(transformer, dtype)
    return transformer, alignformer


def _weights(modules) -> tuple[int, int, int]:
    """(frozen bytes, trainable bytes, AdamW state bytes): two fp32 moments and a 4-byte step per trained tensor."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    trained = [p for p in params if p.requires_grad]
    frozen = sum(p.numel() * p.element_size() for p in params if not p.requires_grad)
    trainable = sum(p.numel() * p.element_size() for p in trained)
    return frozen, trainable, sum(2 * p.numel() * 4 + 4 for p in trained)


def _saved_activations(cfg, transformer, alignformer, video: tuple[int, ...], image_tokens: int, dtype) -> int:
    """Bytes one sample's forward saves for backward: AlignFormer, then the DiT with one narrative per frame."""
    from ..models.attention import FrameLayout, install_framewise_attention
    from ..conditioning import enhanced_condition

    channels, frames, height, width = video
    context_len, text_dim = 512, transformer.config.text_dim
    meta = {"device": "meta"}
    narratives = torch.empty(1, frames, context_len, text_dim, **meta)
    image_dim = transformer.config.image_dim
    image = torch.empty(1, image_tokens, image_dim, dtype=dtype, **meta) if image_dim else None
    totals: dict[int, int] = {}
    layout_state = install_framewise_attention(transformer)
    layout = FrameLayout(torch.arange(frames)[None], image_len=image_tokens, context_len=context_len)
    blocks = [*transformer.blocks, *([alignformer.self_attn, *alignformer.cross_blocks] if alignformer else [])]
    with counting_saved_tensors(totals, blocks), layout_state.use(layout):
        if alignformer is not None:
            anchor = torch.empty(1, channels, height, width, **meta)
            mask = torch.ones(1, frames, context_len, dtype=torch.bool, **meta)
            condition, _ = enhanced_condition(alignformer, anchor, [1], 4 * (frames - 1) + 1, narratives, mask)
        else:
            condition = torch.empty(1, 4 + channels, frames, height, width, **meta)
        hidden = torch.cat([torch.empty(1, channels, frames, height, width, **meta), condition], dim=1).to(dtype)
        transformer(hidden_states=hidden, timestep=torch.empty(1, **meta),
                    encoder_hidden_states=narratives.flatten(1, 2).to(dtype),
                    encoder_hidden_states_image=image, return_dict=False)
    return sum(totals.values())


def footprint(cfg: TrainConfig, video: tuple[int, ...], image_tokens: int) -> Footprint:
    """One replica's bytes for `cfg` on clips whose latents have shape `video` = (C, F, h, w)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.mixed_precision, torch.float32)
    transformer, alignformer = _stage_networks(cfg, dtype, video[0])
    prepared = [alignformer] if cfg.stage == 2 else [transformer, alignformer]  # what StageModules holds
    frozen, trainable, optimizer = _weights(prepared)
    outside = _weights([transformer])[0] if cfg.stage == 2 else 0
    plain = _saved_activations(cfg, transformer, alignformer, video, image_tokens, dtype)
    transformer.enable_gradient_checkpointing()
    if alignformer is not None:
        alignformer.enable_gradient_checkpointing()
    checkpointed = _saved_activations(cfg, transformer, alignformer, video, image_tokens, dtype)
    wrapped = [*(transformer.blocks if cfg.stage != 2 else []), *(alignformer.cross_blocks if alignformer else [])]
    block = max(sum(p.numel() * p.element_size() for p in b.parameters()) for b in wrapped)
    return Footprint(frozen, outside, trainable, optimizer, plain, checkpointed, block)


def per_gpu(fp: Footprint, strategy: str, gpus: int, micro_batch: int, checkpointing: bool) -> dict[str, float]:
    """Bytes per GPU. FSDP and ZeRO-3 shard everything and gather one block at a time (two with prefetch);
    ZeRO-2 keeps whole weights and shards gradients and optimizer states; DDP shards nothing."""
    shard_weights = strategy in ("FSDP", "ZeRO-3")
    shard_states = strategy != "DDP"
    n_w, n_s = (gpus if shard_weights else 1), (gpus if shard_states else 1)
    activations = (fp.activations_checkpointed if checkpointing else fp.activations) * micro_batch
    row = {
        "frozen weights": fp.frozen / n_w + fp.frozen_outside,
        "trained weights (fp32)": fp.trainable / n_w,
        "gradients (fp32)": fp.trainable / n_s,
        "AdamW states": fp.optimizer / n_s,
        "gathered blocks": 2 * fp.largest_block if shard_weights and gpus > 1 else 0,
        "activations": activations,
    }
    row["total"] = sum(row.values())
    return row


def latent_video(cfg: TrainConfig) -> tuple[tuple[int, ...], str]:
    """Latent clip shape (C, F, h, w) from the cache if it exists, else from the config's `video_size`."""
    meta = Path(cfg.cache_dir) / "meta.json"
    if meta.is_file():
        return tuple(json.loads(meta.read_text())["latent_shape"]), f"the cache at {cfg.cache_dir}"
    if cfg.video_size is None:
        raise ValueError(f"--plan needs the clip size: build the cache at {cfg.cache_dir} or set "
                         "video_size: [frames, height, width] in the config")
    frames, height, width = cfg.video_size
    return (16, (frames - 1) // 4 + 1, height // 8, width // 8), f"video_size {frames}x{height}x{width}"


def render(cfg: TrainConfig, gpus: int) -> str:
    """The plan as text: one table per gradient-checkpointing setting, a column per strategy."""
    video, source = latent_video(cfg)
    micro = per_device_batch(cfg.batch_size, gpus, cfg.gradient_accumulation_steps)
    fp = footprint(cfg, video, IMAGE_TOKENS.get(cfg.model, 257))
    lines = [f"stage {cfg.stage}, {cfg.model}, {cfg.mixed_precision} weights, latents {'x'.join(map(str, video))} "
             f"({source}); global batch {cfg.batch_size} = {gpus} GPUs x {micro} x {cfg.gradient_accumulation_steps} "
             "accumulation", f"trained parameters: {fp.trainable // 4:,}; frozen weights: {(fp.frozen + fp.frozen_outside) / GIB:.2f} GiB"
             + (" (the DiT runs outside the prepared module: never sharded)" if fp.frozen_outside else "")]
    for checkpointing in (False, True):
        rows = {s: per_gpu(fp, s, gpus, micro, checkpointing) for s in STRATEGIES}
        unit, scale = ("GiB", GIB) if rows["DDP"]["total"] >= GIB else ("MiB", 1024**2)
        lines += ["", f"{unit} per GPU, gradient checkpointing {'on' if checkpointing else 'off'}"
                  f"{' (the config)' if checkpointing == cfg.gradient_checkpointing else ''}:",
                  f"{'':24}" + "".join(f"{s:>10}" for s in STRATEGIES)]
        for item in rows["DDP"]:
            lines.append(f"{item:24}" + "".join(f"{rows[s][item] / scale:10.2f}" for s in STRATEGIES))
    lines += ["", "Not counted: CUDA context (~0.5-1 GB), allocator fragmentation, communication buckets, "
              "one layer's backward buffers."]
    return "\n".join(lines)
