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
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKLWan, WanImageToVideoPipeline, WanTransformer3DModel
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import BaseOutput
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
from .settings import MODES, NARRATED_MODES

PROMPT_MODES = ("wan", "no_multi_prompt")  # the DiT reads the user's prompt, so `prompt_embeds` can stand for it
# ReasonDiff's stage-1 LoRA, loaded under this adapter name (`load_reasondiff_lora`), is switched off in the
# baseline modes: "wan" and "rewrite" are the base model, as in the paper's comparison.
LORA_ADAPTER = "reasondiff"


class Narrator(Protocol):
    """What the pipeline needs from a narrator; `reasondiff.VisionNarrator` provides it."""

    def narrate(self, image: PIL.Image.Image, prompt: str, num_frames: int) -> Narration: ...

    def rewrite(self, image: PIL.Image.Image, prompt: str) -> str: ...


@dataclass
class ReasonDiffPipelineOutput(BaseOutput):
    """`frames`: the video (list of PIL lists, np array or latents); `narration`: the script used (None for
    "wan"/"rewrite"); `prompt`: the prompt Wan saw in "wan"/"rewrite" modes, else the user's prompt (None when
    `prompt_embeds` were given). Both are lists when the call was batched (a list of prompts)."""

    frames: Any
    narration: Narration | list[Narration] | None
    prompt: str | list[str] | None


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
        # from a local folder or a hub id (see loading.find_alignformer).
        from .loading import find_alignformer

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

    def check_reasondiff_inputs(self, image, prompt, narration, narrator, mode, num_frames, height, width,
                                negative_prompt=None, prompt_embeds=None, negative_prompt_embeds=None,
                                callback_on_step_end_tensor_inputs=None, guidance_scale_2=None,
                                max_sequence_length=512):
        """Every check, before the narrator, the encoders or the denoiser run (diffusers' own `check_inputs`
        included: callback tensor names, prompt vs prompt_embeds, guidance_scale_2)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if not isinstance(image, (PIL.Image.Image, np.ndarray, torch.Tensor)):
            raise TypeError(f"image must be a PIL image, numpy array or tensor, got {type(image).__name__}")
        self._check_prompt(prompt, prompt_embeds, negative_prompt_embeds, narration, mode, max_sequence_length)
        check_num_frames(num_frames)
        multiple = self.vae_scale_factor_spatial * self.transformer.config.patch_size[1]
        if height % multiple or width % multiple or height <= 0 or width <= 0:
            raise ValueError(f"height and width must be positive multiples of {multiple}, got {height}x{width}")
        # the image was checked above (numpy arrays too, which VideoProcessor reads and the parent's check refuses)
        super().check_inputs(prompt, negative_prompt, torch.empty(0), height, width, prompt_embeds,
                             negative_prompt_embeds, None, callback_on_step_end_tensor_inputs, guidance_scale_2)
        limits = limits_of(self)
        if limits is not None:  # before the narrator and the text encoder run, not deep in the denoiser
            limits.check(num_frames, height, width, "this pipeline")
        if mode == "rewrite" and narrator is None:
            raise ValueError("mode='rewrite' needs a narrator (an object with a rewrite(image, prompt) method)")
        if mode in NARRATED_MODES:
            self._check_narrated_mode(mode, narration, narrator)

    def _check_prompt(self, prompt, prompt_embeds, negative_prompt_embeds, narration, mode, max_sequence_length):
        for name, embeds in (("prompt_embeds", prompt_embeds), ("negative_prompt_embeds", negative_prompt_embeds)):
            if embeds is not None and (embeds.ndim != 3 or embeds.shape[1] != max_sequence_length):
                raise ValueError(f"{name} must be [batch, {max_sequence_length}, dim] (Wan's text layout: the "
                                 f"tokens, then zeros), got {list(embeds.shape)}")
        if prompt_embeds is None:
            prompts = [prompt] if isinstance(prompt, str) else prompt
            if not (isinstance(prompts, list) and prompts and all(isinstance(p, str) and p.strip() for p in prompts)):
                raise ValueError("prompt must be a non-empty string or a list of them (or pass prompt_embeds)")
        elif mode not in PROMPT_MODES:
            raise ValueError(f"prompt_embeds stand for the prompt, which mode={mode!r} does not show the DiT; use "
                             f"mode {' or '.join(map(repr, PROMPT_MODES))}")
        elif mode == "no_multi_prompt" and narration is None:
            raise ValueError("mode='no_multi_prompt' with prompt_embeds needs a narration (its position): a narrator "
                             "reads a text prompt")
        batch = len(prompt) if isinstance(prompt, list) else 1 if prompt_embeds is None else prompt_embeds.shape[0]
        if negative_prompt_embeds is not None and negative_prompt_embeds.shape[0] != batch:
            raise ValueError(f"negative_prompt_embeds has batch {negative_prompt_embeds.shape[0]}, the prompt {batch}")
        if isinstance(narration, list) and len(narration) != batch:
            raise ValueError(f"{len(narration)} narrations for a batch of {batch} prompts")

    def _check_narrated_mode(self, mode, narration, narrator):
        if self.config.expand_timesteps:
            raise ValueError(f"mode={mode!r} needs Wan-I2V's channel-concatenated condition; this pipeline has "
                             "expand_timesteps=True (Wan2.2-TI2V-5B): use mode 'wan'")
        if narration is None and narrator is None:
            raise ValueError(f"mode={mode!r} needs a narration (reasondiff.Narration) or a narrator")
        if mode != "no_enhanced_latents":
            self._check_alignformer()

    def _check_alignformer(self):
        if self.alignformer is None:
            raise ValueError("this mode needs an AlignFormer: load one with alignformer=AlignFormer.from_pretrained(...)")
        cfg = self.alignformer.config
        if cfg.in_channels != self.vae.config.z_dim or cfg.text_dim != self.text_encoder.config.d_model:
            raise ValueError(
                f"the AlignFormer expects {cfg.in_channels}-channel latents and {cfg.text_dim}-d text, but the VAE "
                f"has {self.vae.config.z_dim} channels and the text encoder {self.text_encoder.config.d_model} dims"
            )

    # ------------------------------------------------------------------ call

    @torch.no_grad()
    def __call__(
        self, image, prompt: str | list[str] | None = None, narration: Narration | dict | list | None = None,
        narrator: Narrator | None = None, negative_prompt: str | list[str] | None = None, num_frames: int = 81,
        height: int = 480, width: int = 832, num_inference_steps: int = 50, guidance_scale: float = 5.0,
        generator: torch.Generator | list[torch.Generator] | None = None, latents: torch.Tensor | None = None,
        mode: str = "reasondiff", output_type: str = "pil", return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None, callback_on_step_end: Callable[..., dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ("latents",), max_sequence_length: int = 512,
        prompt_embeds: torch.Tensor | None = None, negative_prompt_embeds: torch.Tensor | None = None,
        guidance_scale_2: float | None = None,
    ):
        r"""
        Generate a video in which `image` appears at its narrated frame and `prompt`'s story unfolds.

        Args:
            image: the condition image (one, shared by a batch of prompts).
            prompt: the user's prompt, or a list of them (a batch); it need not describe the image's moment.
            narration: the frame-wise script (position + one description per frame), or one per prompt; when
                None, `narrator.narrate(image, prompt, num_frames)` writes it.
            narrator: an object with `narrate` (and `rewrite`, for mode "rewrite").
            mode: one of "reasondiff", "wan", "rewrite", "no_enhanced_latents", "no_multi_prompt".
            prompt_embeds: `[B, max_sequence_length, D]` in place of `prompt` where the DiT reads the prompt
                (modes "wan" and "no_multi_prompt"), e.g. ThinkDiff's aligned tokens.
            num_frames (4k+1), height and width (multiples of 16), and the rest: as in `WanImageToVideoPipeline`.

        Returns:
            `ReasonDiffPipelineOutput` (frames, narration, prompt), or a tuple of them if not `return_dict`.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        callback_on_step_end_tensor_inputs = list(callback_on_step_end_tensor_inputs)
        # 1. Check inputs, all of them before any work
        self.check_reasondiff_inputs(image, prompt, narration, narrator, mode, num_frames, height, width,
                                     negative_prompt, prompt_embeds, negative_prompt_embeds,
                                     callback_on_step_end_tensor_inputs, guidance_scale_2, max_sequence_length)
        common = dict(negative_prompt=negative_prompt, height=height, width=width, num_frames=num_frames,
                      num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, generator=generator,
                      latents=latents, negative_prompt_embeds=negative_prompt_embeds, output_type=output_type,
                      attention_kwargs=attention_kwargs, callback_on_step_end=callback_on_step_end,
                      callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
                      max_sequence_length=max_sequence_length, guidance_scale_2=guidance_scale_2)
        if mode not in NARRATED_MODES:
            return self._call_base_model(image, prompt, prompt_embeds, narrator, mode, return_dict, **common)
        # 2. The narration of each video: given, or written by the narrator
        narrations = self.prepare_narrations(image, prompt, prompt_embeds, narration, narrator, num_frames)
        video = self._generate(image, prompt, prompt_embeds, narrations, mode, **common)
        batched = isinstance(prompt, list) or isinstance(narration, list) or len(narrations) > 1
        return self._output(video, narrations if batched else narrations[0], prompt, return_dict)

    def _call_base_model(self, image, prompt, prompt_embeds, narrator, mode, return_dict, **common):
        """Modes "wan" and "rewrite": diffusers' own `WanImageToVideoPipeline.__call__` on this pipeline's
        components (both experts with Wan2.2), with ReasonDiff's LoRA off."""
        if mode == "rewrite":
            prompt = narrator.rewrite(image, prompt) if isinstance(prompt, str) else [
                narrator.rewrite(image, p) for p in prompt]
        with self._base_model():
            frames = super().__call__(image=image, prompt=prompt, prompt_embeds=prompt_embeds, **common).frames
        return self._output(frames, None, prompt, return_dict)

    def prepare_narrations(self, image, prompt, prompt_embeds, narration, narrator, num_frames) -> list[Narration]:
        """One narration per video: the given one(s) (a single one serves the whole batch), else the narrator's."""
        prompts = [prompt] if isinstance(prompt, str) else prompt
        batch = len(prompts) if prompts is not None else prompt_embeds.shape[0]
        if narration is None:
            given = [narrator.narrate(image, p, num_frames) for p in prompts]
        else:
            given = narration if isinstance(narration, list) else [narration] * batch
        narrations = [n if isinstance(n, Narration) else Narration.model_validate(n) for n in given]
        for n in narrations:
            if n.num_frames != num_frames:
                raise ValueError(f"the narration describes {n.num_frames} frames but num_frames={num_frames}")
        return narrations

    def _generate(self, image, prompt, prompt_embeds, narrations, mode, *, num_frames, height, width,
                  num_inference_steps, guidance_scale, guidance_scale_2, generator, latents, output_type,
                  attention_kwargs, callback_on_step_end, callback_on_step_end_tensor_inputs, max_sequence_length,
                  negative_prompt, negative_prompt_embeds):
        """Steps 3-7 of the ReasonDiff modes, in diffusers' order."""
        self._guidance_scale = guidance_scale
        self._guidance_scale_2 = guidance_scale if guidance_scale_2 is None else guidance_scale_2
        self._attention_kwargs = attention_kwargs
        self._current_timestep = None
        self._interrupt = False
        device = self._execution_device
        # 3. Encode the narratives (each latent frame's text) and the negative prompt
        text = self.encode_narratives(narrations, prompt, prompt_embeds, negative_prompt, negative_prompt_embeds,
                                      mode, max_sequence_length, device)
        image_embeds = self.encode_condition_image(image, len(narrations), device)
        # 4. Prepare timesteps
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        # 5. Condition channels (image at its narrated frame, c* elsewhere) and the initial noise
        latents, condition = self.prepare_reasondiff_latents(image, narrations, text, mode, num_frames, height,
                                                             width, generator, latents, device)
        # 6. Denoising loop, each latent frame cross-attending to its own narrative
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

    def encode_narratives(self, narrations, prompt, prompt_embeds, negative_prompt, negative_prompt_embeds, mode,
                          max_sequence_length, device) -> NarrativeEmbeds:
        """Each video's narrative contexts, built as the trainer builds them (`conditioning.frame_contexts`):
        the batch's distinct texts are encoded once (`conditioning.encode_texts`: Wan's UMT5 code, bit for bit,
        with each text's length from the tokenizer, carried to the AlignFormer's token mask), a latent frame that
        straddles a change of description reads the frame-weighted mean. In "no_multi_prompt" every frame reads
        the video's prompt (or its `prompt_embeds`). The negative prompt goes through diffusers' `encode_prompt`."""
        dtype = self.transformer.dtype
        num_frames = narrations[0].num_frames
        if mode == "no_multi_prompt":
            prompts = [prompt] if isinstance(prompt, str) else prompt
            frame_texts = [[p] * num_frames for p in prompts] if prompt_embeds is None else None
        else:
            frame_texts = [n.descriptions for n in narrations]
        if frame_texts is None:  # video b reads prompt_embeds[b] at every frame
            text_embeds = prompt_embeds.to(device)
            lengths = padded_lengths(text_embeds)  # a caller's embeddings come without their lengths
            caption_index = torch.arange(len(narrations), device=device)[:, None].expand(-1, num_frames)
        else:
            texts = list(dict.fromkeys(t for frames in frame_texts for t in frames))
            text_embeds, lengths = encode_texts(self.tokenizer, self.text_encoder, texts, max_sequence_length,
                                                device=device, return_lengths=True)
            index = {t: i for i, t in enumerate(texts)}
            caption_index = torch.tensor([[index[t] for t in frames] for frames in frame_texts], device=device)
        contexts, frame_to_context, context_lengths = frame_contexts(
            text_embeds[None].expand(len(narrations), -1, -1, -1), lengths[None].expand(len(narrations), -1),
            caption_index)
        # the positive side is ours (frame-wise); given as prompt_embeds, encode_prompt encodes the negative only
        _, negative = self.encode_prompt(None, negative_prompt, self.do_classifier_free_guidance,
                                         prompt_embeds=contexts[:, 0], negative_prompt_embeds=negative_prompt_embeds,
                                         max_sequence_length=max_sequence_length, device=device)
        return NarrativeEmbeds(contexts, context_lengths, frame_to_context,
                               None if negative is None else negative.to(dtype))

    def encode_condition_image(self, image, batch_size: int, device) -> torch.Tensor | None:
        """CLIP image tokens for every video (Wan's `encode_image`); None for DiTs without image cross-attention
        (Wan2.2-I2V-A14B)."""
        if self.transformer.config.image_dim is None:
            return None
        return self.encode_image(image, device).repeat(batch_size, 1, 1).to(self.transformer.dtype)

    def prepare_reasondiff_latents(self, image, narrations, text: NarrativeEmbeds, mode, num_frames, height, width,
                                   generator, latents, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(initial noise, condition channels): the image at its narrated pixel frame; c* elsewhere, or zeros as in
        Wan ("no_enhanced_latents"). Like diffusers' `prepare_latents`, for any anchor frame."""
        positions = [n.position for n in narrations]
        pixels = self.video_processor.preprocess(image, height=height, width=width).to(device, torch.float32)
        if mode == "no_enhanced_latents":  # Wan's own condition, with the image at the narrated frame
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

    @staticmethod
    def _output(frames, narration, prompt, return_dict):
        if not return_dict:
            return frames, narration, prompt
        return ReasonDiffPipelineOutput(frames=frames, narration=narration, prompt=prompt)
