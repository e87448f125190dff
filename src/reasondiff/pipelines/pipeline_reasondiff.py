"""ReasonDiffPipeline: Wan-I2V guided by a narration (paper §3.3 end, Fig. 2, Appendix A).

It is diffusers' `WanImageToVideoPipeline` (same components, `transformer_2`/`boundary_ratio` for
Wan2.2-I2V-A14B's two experts, LoRA loading, offloading, VAE tiling) plus an optional `alignformer`
component and a frame-wise cross-attention processor on every expert. `mode="wan"` and `"rewrite"`
run the parent's own `__call__`; the other modes run ReasonDiff's conditioning:

- the condition image is VAE-encoded on its own (the anchor latent c_j) and placed at its narrated frame j;
- the AlignFormer turns that anchor latent and the per-frame narratives into c*, which fills the
  condition channels of every latent frame (c*_j is the anchor itself);
- each latent frame's tokens cross-attend to their own narrative; CLIP image tokens stay shared.

With two experts (Wan2.2), both read the same c* and the same frame-wise narratives, both carry the
frame-wise processor and the stage-1 LoRA; `transformer` denoises timesteps >= boundary_ratio * 1000,
`transformer_2` the rest, exactly as in diffusers (docs/pipeline.md says why).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
from diffusers import AutoencoderKLWan, WanImageToVideoPipeline, WanTransformer3DModel
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils.torch_utils import randn_tensor

from ..frames import check_num_frames, num_latent_frames
from ..models.alignformer import AlignFormer
from ..models.attention import FrameLayout, install_framewise_attention
from ..narrator.schema import Narration
from ..conditioning import (
    condition_mask,
    decode_latents,
    encode_anchor,
    encode_texts,
    encode_video,
    enhanced_condition,
    frame_contexts,
    narratives_per_frame,
    padded_lengths,
    place_image,
)
from .limits import limits_of
from .pipeline_output import ReasonDiffPipelineOutput

# ReasonDiff's stage-1 LoRA, loaded under this adapter name (`load_reasondiff_lora`), is switched off in the
# baseline modes: "wan" and "rewrite" are the base model, as in the paper's comparison.
LORA_ADAPTER = "reasondiff"


@dataclass
class NarrativeEmbeds:
    """What the DiT's text cross-attention reads: each video's narrative contexts `[B, U, L, D]` (zero-padded
    across the batch), their lengths in tokens `[B, U]` (the AlignFormer's token mask), the context of every
    latent frame `[B, F]`, and the negative prompt `[B, L, D]`."""

    contexts: torch.Tensor
    context_lengths: torch.Tensor
    frame_to_context: torch.Tensor
    negative: torch.Tensor | None

    @property
    def prompt_embeds(self) -> torch.Tensor:
        """The contexts laid end to end, `[B, U*L, D]`: the layout `FrameWiseWanAttnProcessor` reads."""
        return self.contexts.reshape(self.contexts.shape[0], -1, self.contexts.shape[-1])


class ReasonDiffPipeline(WanImageToVideoPipeline):
    r"""
    Unpaired text-image-to-video generation on Wan2.1-I2V or Wan2.2-I2V-A14B (two experts).

    Load real weights with the Wan checkpoint plus a trained AlignFormer (and the stage-1 LoRA):

        >>> pipe = ReasonDiffPipeline.from_pretrained(
        ...     "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        ...     alignformer=AlignFormer.from_pretrained("path/to/alignformer"),
        ...     dtype=torch.bfloat16,
        ... )
        >>> pipe.load_reasondiff_lora("path/to/lora")
        >>> out = pipe(image, "A cat plays in the room", narration=narration)

    Args:
        alignformer: predicts c*; required by the modes "reasondiff" and "no_multi_prompt".
        predicted_mask_value: the mask value for latent frames whose condition channels hold c*
            (Wan uses 0 for "no condition here"; the anchor's pixel frame is always 1).
        transformer_2, boundary_ratio, expand_timesteps: as in `WanImageToVideoPipeline` (Wan2.2).
    """

    model_cpu_offload_seq = "text_encoder->image_encoder->alignformer->transformer->transformer_2->vae"
    _optional_components = ["transformer", "transformer_2", "image_encoder", "image_processor", "alignformer"]

    def __init__(
        self,
        tokenizer,
        text_encoder,
        vae: AutoencoderKLWan,
        scheduler,
        image_processor=None,
        image_encoder=None,
        transformer: WanTransformer3DModel | None = None,
        alignformer: AlignFormer | None = None,
        predicted_mask_value: float = 0.0,
        transformer_2: WanTransformer3DModel | None = None,
        boundary_ratio: float | None = None,
        expand_timesteps: bool = False,
    ):
        if transformer is None:
            raise ValueError("ReasonDiffPipeline needs a transformer (Wan2.1's DiT, or Wan2.2's high-noise expert)")
        super().__init__(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler,
                         image_processor=image_processor, image_encoder=image_encoder, transformer=transformer,
                         transformer_2=transformer_2, boundary_ratio=boundary_ratio, expand_timesteps=expand_timesteps)
        self.register_modules(alignformer=alignformer)
        self.register_to_config(predicted_mask_value=predicted_mask_value)
        self._install_framewise_attention()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a saved ReasonDiff pipeline, or a Wan2.1/2.2-I2V repo/folder (pass `alignformer=` to add one)."""
        if "alignformer" not in kwargs:  # `dtype` (diffusers >= 0.42) or the deprecated `torch_dtype`, like diffusers
            dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
            if isinstance(dtype, dict):  # diffusers' per-component form, e.g. {"default": bf16, "vae": fp32}
                dtype = dtype.get("alignformer", dtype.get("default"))
            kwargs["alignformer"] = cls._load_alignformer(pretrained_model_name_or_path, dtype)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @staticmethod
    def _load_alignformer(path, dtype) -> AlignFormer | None:
        # diffusers' loader only knows diffusers/transformers classes, so our component is loaded here,
        # from a local folder or a hub id (see hub.find_alignformer).
        from .hub import find_alignformer

        folder = find_alignformer(path)
        return AlignFormer.from_pretrained(folder, dtype=dtype) if folder is not None else None

    # ------------------------------------------------------------------ experts, LoRA, attention

    @property
    def experts(self) -> list[WanTransformer3DModel]:
        """The DiTs: `[transformer]` for Wan2.1, `[transformer, transformer_2]` for Wan2.2's high/low-noise experts."""
        return [model for model in (self.transformer, getattr(self, "transformer_2", None)) if model is not None]

    def _install_framewise_attention(self):
        """The frame-wise processor on every expert (idempotent: it survives a user's `set_attn_processor`)."""
        return [install_framewise_attention(model) for model in self.experts]

    def load_reasondiff_lora(self, path: str, low_noise_path: str | None = None, **kwargs) -> None:
        """Load the stage-1 LoRA as ReasonDiff's adapter: active in the ReasonDiff modes, off in "wan"/"rewrite".

        With two experts it goes into both (both read c* and the frame-wise narratives); `low_noise_path` gives
        `transformer_2` its own LoRA instead (one trained on the low-noise timesteps)."""
        self.load_lora_weights(path, adapter_name=LORA_ADAPTER, **kwargs)
        if getattr(self, "transformer_2", None) is not None:
            self.load_lora_weights(low_noise_path or path, adapter_name=LORA_ADAPTER, load_into_transformer_2=True,
                                   **kwargs)

    @contextlib.contextmanager
    def _base_model(self):
        """Every expert carrying ReasonDiff's LoRA with its adapters off (per model: an expert without adapters
        would refuse diffusers' pipeline-wide `disable_lora`)."""
        tuned = [model for model in self.experts if LORA_ADAPTER in (getattr(model, "peft_config", None) or {})]
        for model in tuned:
            model.disable_lora()
        try:
            yield
        finally:
            for model in tuned:
                model.enable_lora()

    @contextlib.contextmanager
    def _frame_layout(self, layout: FrameLayout):
        with contextlib.ExitStack() as stack:
            for state in self._install_framewise_attention():
                stack.enter_context(state.use(layout))
            yield

    # ------------------------------------------------------------------ 1. checks

    def check_inputs(self, prompt, negative_prompt, image, height, width, prompt_embeds=None,
                     negative_prompt_embeds=None, image_embeds=None, callback_on_step_end_tensor_inputs=None,
                     guidance_scale_2=None, *, num_frames=None, frame_prompts=None, image_frame_index=None,
                     enhanced_latents=True, last_image=None, max_sequence_length=512):
        """diffusers' checks, then ReasonDiff's, all before an encoder or the denoiser runs. The parent's
        `__call__` calls this with its own ten arguments; the keyframe arguments are checked only when given."""
        # the DiT reads frame_prompts, not the prompt: the parent's "prompt or prompt_embeds" holds for them too
        shown = prompt if prompt is not None or prompt_embeds is not None or frame_prompts is None else ""
        multiple = self.vae_scale_factor_spatial * self.transformer.config.patch_size[1]
        if height % multiple or width % multiple or height <= 0 or width <= 0:
            raise ValueError(f"height and width must be positive multiples of {multiple}, got {height}x{width}")
        super().check_inputs(shown, negative_prompt, image, height, width, prompt_embeds, negative_prompt_embeds,
                             image_embeds, callback_on_step_end_tensor_inputs, guidance_scale_2)
        for name, embeds in (("prompt_embeds", prompt_embeds), ("negative_prompt_embeds", negative_prompt_embeds)):
            if embeds is not None and (embeds.ndim != 3 or embeds.shape[1] != max_sequence_length):
                raise ValueError(f"{name} must be [batch, {max_sequence_length}, dim] (Wan's text layout: the "
                                 f"tokens, then zeros), got {list(embeds.shape)}")
        if num_frames is not None:
            check_num_frames(num_frames)
            limits = limits_of(self)
            if limits is not None:  # before the text encoder runs, not deep in the denoiser
                limits.check(num_frames, height, width, "this pipeline")
        if frame_prompts is None and image_frame_index is None:
            return
        if prompt_embeds is not None and frame_prompts is not None:
            raise ValueError("prompt_embeds stand for the prompt, which the DiT does not read when frame_prompts are "
                             "given; pass one or the other")
        if last_image is not None:
            raise ValueError("last_image is Wan's first-last-frame condition; with frame_prompts or image_frame_index "
                             "the image sits at its own frame: pass the one or the others")
        batch = self._batch_size(prompt, prompt_embeds, frame_prompts)
        self._check_keyframe_inputs(batch, num_frames, frame_prompts, image_frame_index, negative_prompt_embeds)
        if self.config.expand_timesteps:
            raise ValueError("frame_prompts and image_frame_index need Wan-I2V's channel-concatenated condition; this "
                             "pipeline has expand_timesteps=True (Wan2.2-TI2V-5B)")
        if enhanced_latents:
            self.check_alignformer()

    @staticmethod
    def _batch_size(prompt, prompt_embeds, frame_prompts) -> int:
        """Videos per prompt set: the prompts', else the embeddings', else one per list of frame prompts."""
        if isinstance(prompt, list):
            return len(prompt)
        if prompt is not None:
            return 1
        if prompt_embeds is not None:
            return prompt_embeds.shape[0]
        return len(frame_prompts) if frame_prompts and isinstance(frame_prompts[0], list) else 1

    @staticmethod
    def _check_keyframe_inputs(batch, num_frames, frame_prompts, image_frame_index, negative_prompt_embeds):
        indices = _per_video(image_frame_index, batch, "image_frame_index", int)
        for index in indices:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < num_frames:
                raise ValueError(f"image_frame_index must be a frame of the video, 0..{num_frames - 1} (0-based, as "
                                 f"in diffusers' keyframe conditions), got {index!r}")
        for texts in _per_video(frame_prompts, batch, "frame_prompts", str):
            texts_ok = isinstance(texts, list) and all(isinstance(t, str) and t.strip() for t in texts)
            if not texts_ok or len(texts) != num_frames:
                raise ValueError(f"frame_prompts must be a list of one non-empty text per frame "
                                 f"({num_frames}), or one such list per prompt")
        if negative_prompt_embeds is not None and negative_prompt_embeds.shape[0] != batch:
            raise ValueError(f"negative_prompt_embeds has batch {negative_prompt_embeds.shape[0]}, the prompt {batch}")

    def check_alignformer(self):
        if self.alignformer is None:
            raise ValueError("enhanced latents: this call needs an AlignFormer; load one with "
                             "alignformer=AlignFormer.from_pretrained(...)")
        cfg = self.alignformer.config
        if cfg.in_channels != self.vae.config.z_dim or cfg.text_dim != self.text_encoder.config.d_model:
            raise ValueError(
                f"the AlignFormer expects {cfg.in_channels}-channel latents and {cfg.text_dim}-d text, but the VAE "
                f"has {self.vae.config.z_dim} channels and the text encoder {self.text_encoder.config.d_model} dims"
            )

    # ------------------------------------------------------------------ call

    @torch.no_grad()
    def __call__(
        self,
        image,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int = 480,
        width: int = 832,
        num_frames: int = 81,
        num_inference_steps: int = 50,
        guidance_scale: float = 5.0,
        guidance_scale_2: float | None = None,
        num_videos_per_prompt: int | None = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
        last_image: torch.Tensor | None = None,
        output_type: str | None = "np",
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable[..., dict] | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 (diffusers' signature)
        max_sequence_length: int = 512,
        *,
        frame_prompts: list[str] | list[list[str]] | None = None,
        image_frame_index: int | list[int] | None = None,
        enhanced_latents: bool = True,
        **deprecated,
    ):
        r"""
        `WanImageToVideoPipeline.__call__`, argument for argument, plus the image at any frame with a text per frame.

        Without `frame_prompts` and `image_frame_index` this is diffusers' own Wan I2V call on these weights (the
        stage-1 LoRA off): the paper's baseline. With them, ReasonDiff's conditioning runs.

        Args:
            frame_prompts: one text per pixel frame (`num_frames` of them), or one such list per prompt: each latent
                frame's tokens cross-attend to their own frames' texts. None with `image_frame_index`: every frame
                reads `prompt` (or `prompt_embeds`), the paper's "w/o multi-prompt" ablation.
            image_frame_index: the 0-based pixel frame where `image` belongs (diffusers' keyframe convention; a
                `Narration`'s 1-based `position` minus one), or one per prompt. Default 0 when `frame_prompts` are
                given.
            enhanced_latents: fill the other frames' condition channels with the AlignFormer's c* (the method);
                False leaves them empty as Wan does (the paper's "w/o enhanced latents", no AlignFormer needed).
            The rest: as in `WanImageToVideoPipeline`. A narration and a narrator are the business of
            `reasondiff.generate`, which writes or takes the script and calls this.

        Returns:
            `ReasonDiffPipelineOutput` (its `frames`), or `(frames,)` if not `return_dict`.
        """
        if deprecated or _is_narration(negative_prompt):
            return self._deprecated_call(image, prompt, negative_prompt, deprecated, locals())
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        call = dict(negative_prompt=negative_prompt, height=height, width=width, num_frames=num_frames,
                    num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                    guidance_scale_2=guidance_scale_2, generator=generator, latents=latents,
                    prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_prompt_embeds,
                    image_embeds=image_embeds, output_type=output_type, attention_kwargs=attention_kwargs,
                    callback_on_step_end=callback_on_step_end,
                    callback_on_step_end_tensor_inputs=list(callback_on_step_end_tensor_inputs),
                    max_sequence_length=max_sequence_length)
        if frame_prompts is None and image_frame_index is None:
            with self._base_model():
                frames = super().__call__(image=image, prompt=prompt, last_image=last_image,
                                          num_videos_per_prompt=num_videos_per_prompt, **call).frames
            return ReasonDiffPipelineOutput(frames=frames) if return_dict else (frames,)
        # 1. Check inputs, all of them before any work
        self.check_inputs(prompt, negative_prompt, image, height, width, prompt_embeds, negative_prompt_embeds,
                          image_embeds, call["callback_on_step_end_tensor_inputs"], guidance_scale_2,
                          num_frames=num_frames, frame_prompts=frame_prompts, image_frame_index=image_frame_index,
                          enhanced_latents=enhanced_latents, last_image=last_image,
                          max_sequence_length=max_sequence_length)
        # 2. One story per video: frame texts and anchor frame, repeated num_videos_per_prompt times
        batch = self._batch_size(prompt, prompt_embeds, frame_prompts)
        stories = _Stories.of(prompt, frame_prompts, image_frame_index, batch, num_frames, num_videos_per_prompt or 1)
        frames = self._generate(image, stories, enhanced_latents, **call)
        return ReasonDiffPipelineOutput(frames=frames) if return_dict else (frames,)

    def _deprecated_call(self, image, prompt, negative_prompt, deprecated, given):
        """The 0.1 call, `pipe(image, prompt, narration=..., narrator=..., mode=...)`, for one release."""
        from .narrated import generate

        unknown = sorted(set(deprecated) - {"narration", "narrator", "mode"})
        if unknown:
            raise TypeError(f"ReasonDiffPipeline.__call__() got unexpected keyword arguments {', '.join(unknown)}")
        warnings.warn("ReasonDiffPipeline(image, prompt, narration=, narrator=, mode=) is deprecated and goes in 0.3: "
                      "call reasondiff.generate(pipe, image, prompt, narration=..., narrator=..., mode=...), or the "
                      "pipeline with frame_prompts= and image_frame_index=", FutureWarning, stacklevel=3)
        if _is_narration(negative_prompt):  # the old third positional argument
            deprecated, negative_prompt = {**deprecated, "narration": negative_prompt}, None
        skip = ("self", "image", "prompt", "deprecated", "__class__", "frame_prompts", "image_frame_index",
                "enhanced_latents")
        call = {k: v for k, v in given.items() if k not in skip}
        return generate(self, image, prompt, **deprecated, **{**call, "negative_prompt": negative_prompt})

    def _generate(self, image, stories: _Stories, enhanced_latents, *, num_frames, height, width, num_inference_steps,
                  guidance_scale, guidance_scale_2, generator, latents, output_type, attention_kwargs,
                  callback_on_step_end, callback_on_step_end_tensor_inputs, max_sequence_length, negative_prompt,
                  prompt_embeds, negative_prompt_embeds, image_embeds):
        """Steps 3-7 of ReasonDiff's conditioning, in diffusers' order."""
        self._guidance_scale = guidance_scale
        self._guidance_scale_2 = guidance_scale if guidance_scale_2 is None else guidance_scale_2
        self._attention_kwargs = attention_kwargs
        self._current_timestep = None
        self._interrupt = False
        device = self._execution_device
        # 3. Encode each video's frame texts and the negative prompt, and the image for CLIP's tokens
        text = self.encode_frame_prompts(stories, prompt_embeds, negative_prompt, negative_prompt_embeds,
                                         max_sequence_length, device)
        image_embeds = self.encode_condition_image(image, image_embeds, len(stories.positions), device)
        # 4. Prepare timesteps
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        # 5. Condition channels (image at its frame, c* elsewhere) and the initial noise
        latents, condition = self.prepare_reasondiff_latents(image, stories.positions, text, enhanced_latents,
                                                             num_frames, height, width, generator, latents, device)
        # 6. Denoising loop, each latent frame cross-attending to its own texts
        layout = FrameLayout(text.frame_to_context, image_len=0 if image_embeds is None else image_embeds.shape[1],
                             context_len=text.contexts.shape[2])
        with self._frame_layout(layout):
            latents = self._denoise(latents, condition, text, image_embeds, num_inference_steps,
                                    callback_on_step_end, callback_on_step_end_tensor_inputs)
        # 7. Decode
        video = latents
        if output_type != "latent":
            video = self.video_processor.postprocess_video(decode_latents(self.vae, latents), output_type=output_type)
        self.maybe_free_model_hooks()
        return video

    # ------------------------------------------------------------------ 3-5. encoders and latents

    def encode_frame_prompts(self, stories: _Stories, prompt_embeds, negative_prompt, negative_prompt_embeds,
                             max_sequence_length, device) -> NarrativeEmbeds:
        """Each video's narrative contexts, built as the trainer builds them (`conditioning.frame_contexts`):
        the batch's distinct texts are encoded once (`conditioning.encode_texts`: Wan's UMT5 code, bit for bit,
        with each text's length from the tokenizer, carried to the AlignFormer's token mask), a latent frame that
        straddles a change of text reads the frame-weighted mean. Without frame texts every frame reads the video's
        `prompt_embeds` row. The negative prompt goes through diffusers' `encode_prompt`."""
        dtype = self.transformer.dtype
        videos, num_frames = len(stories.positions), stories.num_frames
        if stories.frame_texts is None:  # video b reads prompt_embeds[b // repeats] at every frame
            text_embeds = prompt_embeds.to(device).repeat_interleave(stories.repeats, dim=0)
            lengths = padded_lengths(text_embeds)  # a caller's embeddings come without their lengths
            caption_index = torch.arange(videos, device=device)[:, None].expand(-1, num_frames)
        else:
            texts = list(dict.fromkeys(t for frames in stories.frame_texts for t in frames))
            text_embeds, lengths = encode_texts(self.tokenizer, self.text_encoder, texts, max_sequence_length,
                                                device=device, return_lengths=True)
            index = {t: i for i, t in enumerate(texts)}
            caption_index = torch.tensor([[index[t] for t in frames] for frames in stories.frame_texts],
                                         device=device)
        contexts, frame_to_context, context_lengths = frame_contexts(
            text_embeds[None].expand(videos, -1, -1, -1), lengths[None].expand(videos, -1), caption_index)
        # the positive side is ours (frame-wise); given as prompt_embeds, encode_prompt encodes the negative only
        if negative_prompt_embeds is not None:
            negative_prompt_embeds = negative_prompt_embeds.repeat_interleave(stories.repeats, dim=0)
        _, negative = self.encode_prompt(None, negative_prompt, self.do_classifier_free_guidance,
                                         prompt_embeds=contexts[:, 0], negative_prompt_embeds=negative_prompt_embeds,
                                         max_sequence_length=max_sequence_length, device=device)
        return NarrativeEmbeds(contexts, context_lengths, frame_to_context,
                               None if negative is None else negative.to(dtype))

    def encode_condition_image(self, image, image_embeds, batch_size: int, device) -> torch.Tensor | None:
        """CLIP image tokens for every video (Wan's `encode_image`, or the caller's `image_embeds`); None for DiTs
        without image cross-attention (Wan2.2-I2V-A14B)."""
        if self.transformer.config.image_dim is None:
            return None
        if image_embeds is None:
            image_embeds = self.encode_image(image, device)
        return image_embeds.to(device).repeat(batch_size // image_embeds.shape[0], 1, 1).to(self.transformer.dtype)

    def prepare_reasondiff_latents(self, image, positions, text: NarrativeEmbeds, enhanced_latents, num_frames,
                                   height, width, generator, latents, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(initial noise, condition channels): the image at its 1-based pixel frame; c* elsewhere, or zeros as in
        Wan (`enhanced_latents=False`). Like diffusers' `prepare_latents`, for any anchor frame."""
        pixels = self.video_processor.preprocess(image, height=height, width=width).to(device, torch.float32)
        if not enhanced_latents:  # Wan's own condition, with the image at its frame
            anchor_video = place_image(pixels.expand(len(positions), -1, -1, -1), positions, num_frames)
            condition_latents = encode_video(self.vae, anchor_video).to(device, torch.float32)
            latent_height, latent_width = condition_latents.shape[-2:]
            mask = condition_mask(positions, num_frames, latent_height, latent_width, 0.0, device=device)
            condition = torch.cat([mask, condition_latents], dim=1)
        else:
            anchors = encode_anchor(self.vae, pixels).to(device, torch.float32).expand(len(positions), -1, -1, -1)
            latent_height, latent_width = anchors.shape[-2:]
            narratives, narrative_mask = narratives_per_frame(text.contexts, text.frame_to_context,
                                                              text.context_lengths)
            condition, _ = enhanced_condition(self.alignformer, anchors, positions, num_frames, narratives,
                                              narrative_mask, self.config.predicted_mask_value)
        shape = (len(positions), self.vae.config.z_dim, num_latent_frames(num_frames), latent_height, latent_width)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        else:
            latents = latents.to(device=device, dtype=torch.float32)
        return latents, condition

    # ------------------------------------------------------------------ 6. denoising

    def _expert(self, t, boundary_timestep) -> tuple[WanTransformer3DModel, float]:
        """The DiT and guidance scale for timestep t: Wan2.2's high-noise expert down to the boundary, then the
        low-noise one (diffusers' rule); Wan2.1's only DiT throughout."""
        if boundary_timestep is None or t >= boundary_timestep:
            return self.transformer, self._guidance_scale
        return self.transformer_2, self._guidance_scale_2

    def _denoise(self, latents, condition, text: NarrativeEmbeds, image_embeds, num_inference_steps,
                 callback_on_step_end, callback_on_step_end_tensor_inputs):
        """Wan-I2V's denoising loop, in the same order of operations as diffusers' (two experts included)."""
        dtype = self.transformer.dtype
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)
        num_warmup_steps = len(timesteps) - num_inference_steps * self.scheduler.order
        boundary = self.config.boundary_ratio
        boundary = None if boundary is None else boundary * self.scheduler.config.num_train_timesteps
        embeds = {"latents": latents, "prompt_embeds": text.prompt_embeds.to(dtype),
                  "negative_prompt_embeds": text.negative}
        with self.progress_bar(total=num_inference_steps) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                self._current_timestep = t
                model, scale = self._expert(t, boundary)
                model_input = torch.cat([embeds["latents"], condition], dim=1).to(dtype)
                noise_pred = self._guided_noise(model, scale, model_input, t.expand(model_input.shape[0]), embeds,
                                                image_embeds)
                embeds["latents"] = self.scheduler.step(noise_pred, t, embeds["latents"], return_dict=False)[0]
                if callback_on_step_end is not None:
                    tensors = {k: embeds[k] for k in callback_on_step_end_tensor_inputs}
                    outputs = callback_on_step_end(self, i, t, tensors)
                    embeds.update({k: outputs.pop(k) for k in list(embeds) if k in outputs})
                if i == len(timesteps) - 1 or ((i + 1) > num_warmup_steps and (i + 1) % self.scheduler.order == 0):
                    progress_bar.update()
        self._current_timestep = None
        return embeds["latents"]

    def _guided_noise(self, model, scale, model_input, timestep, embeds, image_embeds) -> torch.Tensor:
        """One expert's conditional pass (frame-wise narratives) and, with guidance, its unconditional pass."""
        with model.cache_context("cond"):
            noise_pred = model(hidden_states=model_input, timestep=timestep,
                               encoder_hidden_states=embeds["prompt_embeds"], encoder_hidden_states_image=image_embeds,
                               attention_kwargs=self._attention_kwargs, return_dict=False)[0]
        if self.do_classifier_free_guidance:
            with model.cache_context("uncond"):
                noise_uncond = model(hidden_states=model_input, timestep=timestep,
                                     encoder_hidden_states=embeds["negative_prompt_embeds"],
                                     encoder_hidden_states_image=image_embeds, attention_kwargs=self._attention_kwargs,
                                     return_dict=False)[0]
                noise_pred = noise_uncond + scale * (noise_pred - noise_uncond)
        return noise_pred



def _is_narration(value) -> bool:
    """A `Narration` (or its dict, or a list of them) where diffusers' order puts the negative prompt."""
    first = value[0] if isinstance(value, list) and value else value
    return isinstance(first, (Narration, dict))


def _per_video(value, batch: int, name: str, item_type: type) -> list:
    """`value` for each of `batch` videos: one shared, or a list with one per video (for frame prompts, a list of
    lists: a flat list of texts is one video's)."""
    if value is None:
        return []
    per_video = isinstance(value, list) and (item_type is not str or bool(value) and isinstance(value[0], list))
    if not per_video:
        return [value] * batch
    if len(value) != batch:
        raise ValueError(f"{len(value)} entries in {name} for a batch of {batch} prompts")
    return value


@dataclass
class _Stories:
    """What each video of the batch renders: its frame texts (None: every frame reads its prompt) and its 1-based
    anchor frame (the conditioning code's convention), after `num_videos_per_prompt` repeats."""

    frame_texts: list[list[str]] | None
    positions: list[int]
    num_frames: int
    repeats: int

    @classmethod
    def of(cls, prompt, frame_prompts, image_frame_index, batch, num_frames, repeats) -> _Stories:
        texts = _per_video(frame_prompts, batch, "frame_prompts", str) or None
        indices = _per_video(0 if image_frame_index is None else image_frame_index, batch, "image_frame_index", int)
        if texts is None and prompt is not None:
            texts = [[p] * num_frames for p in ([prompt] if isinstance(prompt, str) else prompt)]
        repeat = lambda items: [item for item in items for _ in range(repeats)]  # noqa: E731
        return cls(None if texts is None else repeat(texts), repeat([i + 1 for i in indices]), num_frames, repeats)
