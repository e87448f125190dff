"""ReasonDiffPipeline: Wan2.1-I2V guided by a narration (paper §3.3 end, Fig. 2, Appendix A).

It extends diffusers' `WanImageToVideoPipeline` (same components, LoRA loading, offloading, VAE
tiling) with an optional `alignformer` component and a frame-wise cross-attention processor.
`mode="wan"` runs diffusers' Wan pipeline over the same modules; the other modes run ReasonDiff's
conditioning:

- the condition image is VAE-encoded at its narrated pixel frame j of an otherwise zero video;
- the AlignFormer turns that anchor latent and the per-frame narratives into c*, which fills the
  condition channels of every latent frame (c*_j is the anchor itself);
- each latent frame's tokens cross-attend to their own narrative; CLIP image tokens stay shared.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKLWan, WanImageToVideoPipeline, WanTransformer3DModel
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor

from ..frames import check_num_frames, num_latent_frames
from .limits import limits_of
from ..models.alignformer import AlignFormer
from ..models.attention import FrameLayout, install_framewise_attention
from ..narrator.schema import Narration
from .conditioning import (
    NarrativeContexts,
    condition_mask,
    decode_latents,
    encode_video,
    enhanced_condition,
    narratives_per_frame,
    place_image,
)

MODES = ("reasondiff", "wan", "rewrite", "no_enhanced_latents", "no_multi_prompt")
# ReasonDiff's stage-1 LoRA, loaded under this adapter name (`load_reasondiff_lora`), is switched off in the
# baseline modes: "wan" and "rewrite" are the base model, as in the paper's comparison.
LORA_ADAPTER = "reasondiff"
MODE_HELP = {
    "reasondiff": "full method: image at the narrated frame, c* guidance, frame-wise narratives",
    "wan": "plain Wan2.1 I2V: image as first frame, the user's prompt (diffusers' pipeline, unchanged)",
    "rewrite": "the narrator rewrites the prompt for plain Wan (the paper's naive baseline)",
    "no_enhanced_latents": "ablation: frame-wise narratives and the narrated position, no c*",
    "no_multi_prompt": "ablation: c* and the narrated position, the user's prompt for every frame",
}


class Narrator(Protocol):
    """What the pipeline needs from a narrator; `reasondiff.VisionNarrator` provides it."""

    def narrate(self, image: PIL.Image.Image, prompt: str, num_frames: int) -> Narration: ...

    def rewrite(self, image: PIL.Image.Image, prompt: str) -> str: ...


@dataclass
class ReasonDiffPipelineOutput(BaseOutput):
    """`frames`: the video (list of PIL lists, np array or latents); `narration`: the script used (None for
    "wan"/"rewrite"); `prompt`: the prompt Wan saw in "wan"/"rewrite" modes, else the user's prompt."""

    frames: Any
    narration: Narration | None
    prompt: str


class ReasonDiffPipeline(WanImageToVideoPipeline):
    r"""
    Unpaired text-image-to-video generation on Wan2.1-I2V.

    Load real weights with the Wan checkpoint plus a trained AlignFormer (and the stage-1 LoRA):

        >>> pipe = ReasonDiffPipeline.from_pretrained(
        ...     "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        ...     alignformer=AlignFormer.from_pretrained("path/to/alignformer"),
        ...     dtype=torch.bfloat16,
        ... )
        >>> pipe.load_lora_weights("path/to/lora")
        >>> out = pipe(image, "A cat plays in the room", narration=narration)

    Args:
        alignformer: predicts c*; required by the modes "reasondiff" and "no_multi_prompt".
        predicted_mask_value: the mask value for latent frames whose condition channels hold c*
            (Wan uses 0 for "no condition here"; the anchor's pixel frame is always 1).
    """

    model_cpu_offload_seq = "text_encoder->image_encoder->alignformer->transformer->vae"
    _optional_components = ["alignformer", "transformer_2"]

    def __init__(
        self,
        tokenizer,
        text_encoder,
        vae: AutoencoderKLWan,
        scheduler,
        image_processor,
        image_encoder,
        transformer: WanTransformer3DModel,
        alignformer: AlignFormer | None = None,
        predicted_mask_value: float = 0.0,
    ):
        DiffusionPipeline.__init__(self)
        self.register_modules(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            image_encoder=image_encoder,
            transformer=transformer,
            scheduler=scheduler,
            image_processor=image_processor,
            alignformer=alignformer,
        )
        self.register_to_config(predicted_mask_value=predicted_mask_value)
        self.vae_scale_factor_temporal = self.vae.config.scale_factor_temporal
        self.vae_scale_factor_spatial = self.vae.config.scale_factor_spatial
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor_spatial)
        self._layout = install_framewise_attention(self.transformer)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a saved ReasonDiff pipeline, or a Wan2.1-I2V repo/folder (pass `alignformer=` to add one)."""
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

    # ------------------------------------------------------------------ checks

    def load_reasondiff_lora(self, path: str, **kwargs) -> None:
        """Load the stage-1 LoRA as ReasonDiff's adapter: active in the ReasonDiff modes, off in "wan"/"rewrite"."""
        self.load_lora_weights(path, adapter_name=LORA_ADAPTER, **kwargs)

    @contextlib.contextmanager
    def _base_model(self):
        adapters = getattr(self.transformer, "peft_config", None) or {}
        if LORA_ADAPTER not in adapters:
            yield
            return
        self.disable_lora()
        try:
            yield
        finally:
            self.enable_lora()

    def _check(self, image, prompt, narration, narrator, mode, num_frames, height, width):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt must be a non-empty string")
        if not isinstance(image, (PIL.Image.Image, np.ndarray, torch.Tensor)):
            raise TypeError(f"image must be a PIL image, numpy array or tensor, got {type(image).__name__}")
        check_num_frames(num_frames)
        multiple = self.vae_scale_factor_spatial * self.transformer.config.patch_size[1]
        if height % multiple or width % multiple or height <= 0 or width <= 0:
            raise ValueError(f"height and width must be positive multiples of {multiple}, got {height}x{width}")
        limits = limits_of(self)
        if limits is not None:  # before the narrator and the text encoder run, not deep in the denoiser
            limits.check(num_frames, height, width, "this pipeline")
        if mode == "rewrite" and narrator is None:
            raise ValueError("mode='rewrite' needs a narrator (an object with a rewrite(image, prompt) method)")
        if mode in ("reasondiff", "no_enhanced_latents", "no_multi_prompt"):
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

    @staticmethod
    def _fit_narration(narration: Narration | dict, num_frames: int) -> Narration:
        narration = narration if isinstance(narration, Narration) else Narration.model_validate(narration)
        if narration.num_frames != num_frames:
            raise ValueError(f"the narration describes {narration.num_frames} frames but num_frames={num_frames}")
        return narration

    # ------------------------------------------------------------------ call

    @torch.no_grad()
    def __call__(
        self,
        image,
        prompt: str,
        narration: Narration | dict | None = None,
        narrator: Narrator | None = None,
        negative_prompt: str | None = None,
        num_frames: int = 81,
        height: int = 480,
        width: int = 832,
        num_inference_steps: int = 50,
        guidance_scale: float = 5.0,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        mode: str = "reasondiff",
        output_type: str = "pil",
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable[..., dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ("latents",),
        max_sequence_length: int = 512,
    ):
        r"""
        Generate a video in which `image` appears at its narrated frame and `prompt`'s story unfolds.

        Args:
            image: the condition image.
            prompt: the user's prompt; it need not describe the image's moment.
            narration: the frame-wise script (position + one description per frame); when None,
                `narrator.narrate(image, prompt, num_frames)` writes it.
            narrator: an object with `narrate` (and `rewrite`, for mode "rewrite").
            mode: one of "reasondiff", "wan", "rewrite", "no_enhanced_latents", "no_multi_prompt".
            num_frames: 4k+1 frames; height, width: multiples of 16.
            num_inference_steps, guidance_scale, negative_prompt, generator, latents, output_type,
            attention_kwargs, callback_on_step_end, max_sequence_length: as in `WanImageToVideoPipeline`.

        Returns:
            `ReasonDiffPipelineOutput` (frames, narration, prompt), or a tuple of them if not `return_dict`.
        """
        self._check(image, prompt, narration, narrator, mode, num_frames, height, width)
        if mode in ("wan", "rewrite"):
            wan_prompt = prompt if mode == "wan" else narrator.rewrite(image, prompt)
            with self._base_model():
                frames = self._wan_pipeline()(
                    image=image, prompt=wan_prompt, negative_prompt=negative_prompt, height=height, width=width,
                    num_frames=num_frames, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                    generator=generator, latents=latents, output_type=output_type, attention_kwargs=attention_kwargs,
                    callback_on_step_end=callback_on_step_end,
                    callback_on_step_end_tensor_inputs=list(callback_on_step_end_tensor_inputs),
                    max_sequence_length=max_sequence_length,
                ).frames
            return self._output(frames, None, wan_prompt, return_dict)

        if narration is None:
            narration = narrator.narrate(image, prompt, num_frames)
        narration = self._fit_narration(narration, num_frames)
        descriptions = [prompt] * num_frames if mode == "no_multi_prompt" else narration.descriptions
        script = Narration(position=narration.position, descriptions=descriptions)

        self._guidance_scale = guidance_scale
        self._attention_kwargs = attention_kwargs
        self._current_timestep = None
        self._interrupt = False
        device = self._execution_device
        dtype = self.transformer.dtype

        # Text: each distinct description once; latent frames read their (averaged) context.
        contexts = NarrativeContexts.from_latent_descriptions(script.latent_descriptions())
        text_embeds = self._get_t5_prompt_embeds(contexts.texts, max_sequence_length=max_sequence_length, device=device)
        context_embeds = contexts.embed(text_embeds)  # [U, L, D]
        frame_to_context = torch.tensor([contexts.frame_to_context], device=device)
        prompt_embeds = context_embeds.reshape(1, -1, context_embeds.shape[-1]).to(dtype)
        negative_prompt_embeds = None
        if self.do_classifier_free_guidance:
            negative_prompt_embeds = self._get_t5_prompt_embeds(
                negative_prompt or "", max_sequence_length=max_sequence_length, device=device
            ).to(dtype)
        image_embeds = self.encode_image(image, device).to(dtype)

        # Condition channels: the image at its narrated pixel frame, c* everywhere else.
        pixels = self.video_processor.preprocess(image, height=height, width=width).to(device, torch.float32)
        anchor_video = place_image(pixels, [script.position], num_frames)
        condition_latents = encode_video(self.vae, anchor_video).to(device, torch.float32)
        latent_height, latent_width = condition_latents.shape[-2:]
        if mode == "no_enhanced_latents":  # Wan's own condition, with the image at the narrated frame
            mask = condition_mask([script.position], num_frames, latent_height, latent_width, 0.0, device=device)
            condition = torch.cat([mask, condition_latents], dim=1)
        else:
            narratives, narrative_mask = narratives_per_frame(context_embeds[None], frame_to_context)
            condition, _ = enhanced_condition(
                self.alignformer, condition_latents[:, :, script.latent_position], [script.position], num_frames,
                narratives, narrative_mask, self.config.predicted_mask_value,
            )

        shape = (1, self.vae.config.z_dim, num_latent_frames(num_frames), latent_height, latent_width)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        else:
            latents = latents.to(device=device, dtype=torch.float32)

        layout = FrameLayout(frame_to_context, image_len=image_embeds.shape[1], context_len=max_sequence_length)
        self._layout = install_framewise_attention(self.transformer)  # survives a user's set_attn_processor
        with self._layout.use(layout):
            latents = self._denoise(latents, condition, prompt_embeds, negative_prompt_embeds, image_embeds,
                                    num_inference_steps, callback_on_step_end, callback_on_step_end_tensor_inputs)

        if output_type == "latent":
            video = latents
        else:
            video = self.video_processor.postprocess_video(decode_latents(self.vae, latents), output_type=output_type)
        self.maybe_free_model_hooks()
        return self._output(video, narration, prompt, return_dict)

    def _wan_pipeline(self) -> WanImageToVideoPipeline:
        """diffusers' own Wan2.1 I2V pipeline over our modules: modes "wan" and "rewrite" run exactly its code."""
        names = ("tokenizer", "text_encoder", "vae", "scheduler", "image_processor", "image_encoder", "transformer")
        wan = WanImageToVideoPipeline(**{name: getattr(self, name) for name in names})
        wan.set_progress_bar_config(**getattr(self, "_progress_bar_config", {}))
        return wan

    def _denoise(self, latents, condition, prompt_embeds, negative_prompt_embeds, image_embeds, num_inference_steps,
                 callback_on_step_end, callback_on_step_end_tensor_inputs):
        """Wan2.1-I2V's denoising loop (same order of operations as diffusers'), frame-wise text via the processor."""
        dtype = self.transformer.dtype
        self.scheduler.set_timesteps(num_inference_steps, device=latents.device)
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)
        num_warmup_steps = len(timesteps) - num_inference_steps * self.scheduler.order
        with self.progress_bar(total=num_inference_steps) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                self._current_timestep = t
                latent_model_input = torch.cat([latents, condition], dim=1).to(dtype)
                timestep = t.expand(latents.shape[0])
                with self.transformer.cache_context("cond"):
                    noise_pred = self.transformer(
                        hidden_states=latent_model_input, timestep=timestep, encoder_hidden_states=prompt_embeds,
                        encoder_hidden_states_image=image_embeds, attention_kwargs=self._attention_kwargs,
                        return_dict=False,
                    )[0]
                if self.do_classifier_free_guidance:
                    with self.transformer.cache_context("uncond"):
                        noise_uncond = self.transformer(
                            hidden_states=latent_model_input, timestep=timestep,
                            encoder_hidden_states=negative_prompt_embeds, encoder_hidden_states_image=image_embeds,
                            attention_kwargs=self._attention_kwargs, return_dict=False,
                        )[0]
                        noise_pred = noise_uncond + self.guidance_scale * (noise_pred - noise_uncond)
                latents = self.scheduler.step(noise_pred, t, latents, return_dict=False)[0]

                if callback_on_step_end is not None:
                    available = {"latents": latents, "prompt_embeds": prompt_embeds,
                                 "negative_prompt_embeds": negative_prompt_embeds}
                    outputs = callback_on_step_end(
                        self, i, t, {k: available[k] for k in callback_on_step_end_tensor_inputs}
                    )
                    latents = outputs.pop("latents", latents)
                    prompt_embeds = outputs.pop("prompt_embeds", prompt_embeds)
                    negative_prompt_embeds = outputs.pop("negative_prompt_embeds", negative_prompt_embeds)
                if i == len(timesteps) - 1 or ((i + 1) > num_warmup_steps and (i + 1) % self.scheduler.order == 0):
                    progress_bar.update()
        self._current_timestep = None
        return latents

    @staticmethod
    def _output(frames, narration, prompt, return_dict):
        if not return_dict:
            return frames, narration, prompt
        return ReasonDiffPipelineOutput(frames=frames, narration=narration, prompt=prompt)
