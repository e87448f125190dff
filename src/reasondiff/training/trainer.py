"""Two-stage ReasonDiff training (paper §3.4, Algorithm 1, Eq. 1 and 6) with accelerate and peft.

Stage 1 trains a LoRA on the Wan DiT together with the AlignFormer under the flow-matching loss;
stage 2 freezes the DiT and its LoRA and trains the AlignFormer alone with the added reconstruction
term beta * ||c* - c||^2. The condition is built by `reasondiff.pipelines.conditioning`, the same
code the pipeline runs at inference. Stage 0 trains a plain image-to-video DiT (Wan's conditioning:
the first frame, one prompt) with all its weights: the base model of a world without pretrained
weights (SynthWorld), and that world's "Wan2.1" baseline. `conditioning` selects the paper's
ablations for stages 1-2: without enhanced latents (Wan's condition at the narrated frame) or
without multi-prompts (the clip's one prompt for every frame).

Reproducibility: every random choice of a sample (its condition frame, noise, noise level) is a
function of (seed, epoch, sample index), and the data order a function of (seed, epoch). A resumed
run therefore replays exactly what an uninterrupted one would have done, and N processes with
batch b see the same samples and noise as one process with batch N*b.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from diffusers import WanTransformer3DModel
from diffusers.optimization import get_scheduler
from diffusers.utils import convert_unet_state_dict_to_peft
from peft import LoraConfig, set_peft_model_state_dict
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file
from tqdm.auto import tqdm

from ..data.cache import write_cache
from ..data.dataset import CachedClipDataset, collate_clips
from ..models import tiny
from ..models.alignformer import AlignFormer
from ..models.attention import FrameLayout, install_framewise_attention
from ..pipelines.conditioning import condition_mask, enhanced_condition, frame_contexts, narratives_per_frame
from ..pipelines.pipeline_reasondiff import ReasonDiffPipeline
from .config import TrainConfig
from .flow_matching import NUM_TRAIN_TIMESTEPS, noisy_latents, sample_sigma, velocity_target

logger = logging.getLogger(__name__)
LORA_FILE = "pytorch_lora_weights.safetensors"


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The random stream of one sample in one epoch, identical in every process and every resumed run."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


class Trainer:
    def __init__(self, config: TrainConfig):
        self.config = config
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            log_with=None if config.report_to == "none" else config.report_to,
            project_config=ProjectConfiguration(project_dir=str(config.output_dir),
                                                logging_dir=str(config.output_dir / "logs")),
        )
        self.checkpoint_dir = config.output_dir / "checkpoints"
        self.dataset = self._dataset()
        self.transformer, self.alignformer = self._models()
        self.layout = install_framewise_attention(self.transformer)
        self.history: list[dict[str, float]] = []  # per optimizer step, on every process

    # ------------------------------------------------------------------ setup

    def _dataset(self) -> CachedClipDataset:
        cfg = self.config
        if cfg.toy_data is not None and not (cfg.cache_dir / "meta.json").exists():
            if self.accelerator.is_main_process:
                from ..data.toy import toy_clips

                c = tiny.wan_components(seed=0)
                toy = cfg.toy_data
                write_cache(cfg.cache_dir, toy_clips(toy.num_clips, toy.num_frames, toy.size, toy.seed),
                            vae=c["vae"], text_encoder=c["text_encoder"], tokenizer=c["tokenizer"],
                            image_encoder=c["image_encoder"], image_processor=c["image_processor"],
                            anchors_per_clip=4, seed=toy.seed, condition_videos=True)
            self.accelerator.wait_for_everyone()
        return CachedClipDataset(cfg.cache_dir, seed=cfg.seed, anchor="first" if cfg.stage == 0 else "random")

    @property
    def uses_alignformer(self) -> bool:
        return self.config.stage > 0 and self.config.conditioning != "no_enhanced_latents"

    @property
    def uses_condition_videos(self) -> bool:
        return self.config.stage == 0 or self.config.conditioning == "no_enhanced_latents"

    def _models(self) -> tuple[WanTransformer3DModel, AlignFormer | None]:
        cfg, meta = self.config, self.dataset.meta
        if self.uses_condition_videos and not meta.get("condition_videos"):
            raise ValueError(f"stage {cfg.stage} / {cfg.conditioning} trains on whole condition videos: build the "
                             "cache with condition_videos=True")
        if cfg.transformer_config is not None:
            torch.manual_seed(cfg.seed)
            transformer = WanTransformer3DModel(**cfg.transformer_config)
        elif cfg.model == "tiny":
            transformer = tiny.wan_components(seed=0)["transformer"]
        else:
            transformer = WanTransformer3DModel.from_pretrained(cfg.model, subfolder="transformer")
        if transformer.config.text_dim != meta["text_dim"]:
            raise ValueError(f"the DiT reads {transformer.config.text_dim}-d text, the cache holds {meta['text_dim']}-d")
        transformer.requires_grad_(cfg.stage == 0)  # stage 0 trains every weight; later stages a LoRA at most

        init = cfg.init_from
        if init is not None and self.uses_alignformer and not (init / "alignformer").is_dir():
            raise ValueError(f"init_from={init} has no alignformer/ folder (expected a stage-1 export)")
        if cfg.stage == 2 and not (init / LORA_FILE).is_file():
            raise ValueError(f"stage 2 needs the stage-1 LoRA: {init / LORA_FILE} not found")
        alignformer = None
        if self.uses_alignformer and init is not None:
            alignformer = AlignFormer.from_pretrained(init / "alignformer")
        elif self.uses_alignformer:
            torch.manual_seed(cfg.seed)
            alignformer = AlignFormer(in_channels=meta["latent_shape"][0], text_dim=meta["text_dim"],
                                      **cfg.alignformer.model_dump())
        if alignformer is not None:
            alignformer.train()

        if cfg.stage == 1:
            transformer.add_adapter(LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha,
                                               target_modules=cfg.lora_target_modules, init_lora_weights=True))
        elif cfg.stage == 2:
            transformer.load_lora_adapter(str(init), weight_name=LORA_FILE, prefix="transformer")
            transformer.requires_grad_(False)
        if cfg.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
            if alignformer is not None:
                alignformer.enable_gradient_checkpointing()
        # Frozen weights in the compute precision, trainable ones in float32 (as diffusers' LoRA scripts do).
        weight_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.mixed_precision, torch.float32)
        transformer.to(self.accelerator.device)
        if weight_dtype != torch.float32:
            transformer.to(dtype=weight_dtype)
        for param in transformer.parameters():
            if param.requires_grad:
                param.data = param.data.float()
        self.weight_dtype = weight_dtype
        return transformer, alignformer

    def _trainable(self):
        params = list(self.alignformer.parameters()) if self.alignformer is not None else []
        if self.config.stage in (0, 1):
            params += [p for p in self.transformer.parameters() if p.requires_grad]
        return params

    # ------------------------------------------------------------------ loss

    def _condition(self, batch: dict, contexts, frame_to_context, device):
        """DiT condition channels for the batch, and c* (None where no AlignFormer runs)."""
        cfg = self.config
        positions = batch["anchor_position"].tolist()
        num_frames = batch["caption_index"].shape[1]
        if self.uses_condition_videos:  # Wan's own condition: the encoded zero video holding the frame
            video = batch["condition_video"].to(device)
            mask = condition_mask(positions, num_frames, *video.shape[-2:], 0.0, device=device)
            return torch.cat([mask, video], dim=1), None
        narratives, narrative_mask = narratives_per_frame(contexts, frame_to_context)
        return enhanced_condition(self.alignformer, batch["anchor_latent"].to(device), positions, num_frames,
                                  narratives, narrative_mask, cfg.predicted_mask_value)

    def compute_loss(self, batch: dict, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. 1 (stages 0 and 1), Eq. 6 (stage 2) for one batch."""
        cfg, device = self.config, self.accelerator.device
        latents = batch["latents"].to(device)  # x (x1 in the paper), also c of Eq. 6
        noise, sigma = [], []
        for index in batch["index"].tolist():
            g = sample_generator(cfg.seed, epoch, index)
            noise.append(torch.randn(latents.shape[1:], generator=g))
            sigma.append(sample_sigma(g, cfg.timestep_sampling, cfg.shift, cfg.logit_mean, cfg.logit_std))
        noise = torch.stack(noise).to(device)
        sigma = torch.tensor(sigma, device=device)

        caption_index = batch["caption_index"]
        if cfg.stage == 0 or cfg.conditioning == "no_multi_prompt":  # the clip's one prompt, every frame
            caption_index = batch["prompt_index"][:, None].expand_as(caption_index)
        contexts, frame_to_context = frame_contexts(batch["text_embeds"].to(device), caption_index.to(device))
        condition, c_star = self._condition(batch, contexts, frame_to_context, device)
        image_embeds = batch["image_embeds"].to(device, self.weight_dtype)
        layout = FrameLayout(frame_to_context, image_len=image_embeds.shape[1], context_len=contexts.shape[2])
        hidden = torch.cat([noisy_latents(latents, noise, sigma), condition], dim=1).to(self.weight_dtype)
        with self.layout.use(layout), self.accelerator.autocast():
            prediction = self.transformer(
                hidden_states=hidden, timestep=sigma * NUM_TRAIN_TIMESTEPS,
                encoder_hidden_states=contexts.flatten(1, 2).to(self.weight_dtype),
                encoder_hidden_states_image=image_embeds, return_dict=False,
            )[0]
        flow = F.mse_loss(prediction.float(), velocity_target(latents, noise).float())  # Eq. 1
        logs = {"flow": flow.item()}
        loss = flow
        if c_star is not None:
            reconstruction = F.mse_loss(c_star, latents)  # ||c* - c||^2 of Eq. 6
            logs["reconstruction"] = reconstruction.item()
            if cfg.stage == 2:
                loss = flow + cfg.beta * reconstruction
        return loss, {"loss": loss.item(), **logs}

    # ------------------------------------------------------------------ checkpoints

    def _register_hooks(self):
        accelerator = self.accelerator

        def save_hook(models, weights, output_dir):
            # Save only what training changes: the AlignFormer and the LoRA, as safetensors.
            for model in models:
                unwrapped = accelerator.unwrap_model(model)
                if isinstance(unwrapped, AlignFormer):
                    unwrapped.save_pretrained(Path(output_dir) / "alignformer")
                elif self.config.stage == 0:
                    unwrapped.save_pretrained(Path(output_dir) / "transformer")
                else:
                    ReasonDiffPipeline.save_lora_weights(
                        output_dir, transformer_lora_layers=get_peft_model_state_dict(unwrapped),
                        safe_serialization=True,
                    )
            weights.clear()

        def load_hook(models, input_dir):
            while models:
                unwrapped = accelerator.unwrap_model(models.pop())
                if isinstance(unwrapped, AlignFormer) or self.config.stage == 0:  # whole models
                    folder = "alignformer" if isinstance(unwrapped, AlignFormer) else "transformer"
                    unwrapped.load_state_dict(load_file(str(Path(input_dir) / folder / "diffusion_pytorch_model.safetensors")))
                else:
                    state = ReasonDiffPipeline.lora_state_dict(input_dir)
                    state = {k.removeprefix("transformer."): v for k, v in state.items() if k.startswith("transformer.")}
                    set_peft_model_state_dict(unwrapped, convert_unet_state_dict_to_peft(state), adapter_name="default")

        accelerator.register_save_state_pre_hook(save_hook)
        accelerator.register_load_state_pre_hook(load_hook)

    def _checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first (a folder is complete once renamed from its .tmp name)."""
        if not self.checkpoint_dir.is_dir():
            return []
        done = [p for p in self.checkpoint_dir.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp")]
        return sorted(done, key=lambda p: int(p.name.split("-")[1]))

    def save_checkpoint(self, step: int, epoch: int, batches_done: int) -> None:
        final = self.checkpoint_dir / f"step-{step:08d}"
        tmp = final.with_name(final.name + ".tmp")
        if self.accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp))
        if self.accelerator.is_main_process:
            state = {"step": step, "epoch": epoch, "batches_done": batches_done}
            (tmp / "trainer_state.json").write_text(json.dumps(state) + "\n")
            os.replace(tmp, final)  # atomic: a checkpoint folder is either absent or complete
            for old in self._checkpoints()[: -self.config.keep_last]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()

    # ------------------------------------------------------------------ loop

    def _loader(self, epoch: int):
        order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.config.seed + epoch))
        self.dataset.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(self.dataset, order.tolist()), batch_size=self.config.batch_size,
            collate_fn=collate_clips, num_workers=self.config.num_workers,
        )
        return self.accelerator.prepare(loader)

    def train(self) -> Path:
        """Run (or resume) training; returns the export folder (alignformer/ + LoRA)."""
        cfg, accelerator = self.config, self.accelerator
        optimizer = torch.optim.AdamW(self._trainable(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        batches_per_epoch = math.ceil(len(self.dataset) / (cfg.batch_size * accelerator.num_processes))
        steps_per_epoch = math.ceil(batches_per_epoch / cfg.gradient_accumulation_steps)
        total_steps = cfg.max_steps or steps_per_epoch * cfg.num_epochs
        lr_scheduler = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=cfg.lr_warmup_steps,
                                     num_training_steps=total_steps)
        trainable = [m for m in (self.alignformer, self.transformer if cfg.stage in (0, 1) else None) if m is not None]
        *trainable, optimizer, lr_scheduler = accelerator.prepare(*trainable, optimizer, lr_scheduler)
        if self.alignformer is not None:
            self.alignformer = trainable[0]
        if cfg.stage in (0, 1):
            self.transformer = trainable[-1]
        self._register_hooks()
        if accelerator.is_main_process and cfg.report_to != "none":
            accelerator.init_trackers("reasondiff", config=json.loads(cfg.model_dump_json()))

        step, start_epoch, skip = 0, 0, 0
        if self._checkpoints():
            latest = self._checkpoints()[-1]
            accelerator.load_state(str(latest))
            state = json.loads((latest / "trainer_state.json").read_text())
            step, start_epoch, skip = state["step"], state["epoch"], state["batches_done"]
            logger.info("resumed from %s (step %d)", latest, step)

        progress = tqdm(total=total_steps, initial=step, desc=f"stage {cfg.stage}", unit="step",
                        disable=not accelerator.is_local_main_process)
        for epoch in range(start_epoch, cfg.num_epochs):
            if step >= total_steps:
                break
            loader = self._loader(epoch)
            batches_done = skip if epoch == start_epoch else 0
            if batches_done:
                loader = accelerator.skip_first_batches(loader, batches_done)
            for batch in loader:
                with accelerator.accumulate(*trainable):
                    loss, logs = self.compute_loss(batch, epoch)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(self._trainable(), cfg.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad()
                batches_done += 1
                if not accelerator.sync_gradients:
                    continue
                step += 1
                self.history.append({"step": step, **logs})
                progress.update(1)
                progress.set_postfix(loss=f"{logs['loss']:.4f}")
                if step % cfg.log_every == 0 or step == total_steps:
                    accelerator.log({**logs, "lr": lr_scheduler.get_last_lr()[0]}, step=step)
                    logger.info("step %d: %s", step, logs)
                if step % cfg.checkpoint_every == 0 or step == total_steps:
                    at_epoch_end = batches_done == batches_per_epoch
                    self.save_checkpoint(step, epoch + at_epoch_end, 0 if at_epoch_end else batches_done)
                if step >= total_steps:
                    break
        progress.close()
        export = self.export()
        accelerator.end_training()  # also ends the process group: last
        return export

    def export(self) -> Path:
        """The result as the pipeline loads it: `alignformer/` and `pytorch_lora_weights.safetensors` (stages
        1-2), or `transformer/` (stage 0, loadable as `model:` of a later stage)."""
        cfg, accelerator = self.config, self.accelerator
        out = cfg.output_dir / "export"
        if accelerator.is_main_process:
            tmp = out.with_name("export.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            if self.alignformer is not None:
                accelerator.unwrap_model(self.alignformer).save_pretrained(tmp / "alignformer")
            if cfg.stage == 0:
                accelerator.unwrap_model(self.transformer).save_pretrained(tmp / "transformer")
            elif cfg.stage == 1:
                ReasonDiffPipeline.save_lora_weights(
                    tmp, transformer_lora_layers=get_peft_model_state_dict(accelerator.unwrap_model(self.transformer)),
                    safe_serialization=True,
                )
            else:  # the LoRA stage 2 ran on, so the export is complete on its own
                shutil.copy2(cfg.init_from / LORA_FILE, tmp / LORA_FILE)
            (tmp / "train_config.json").write_text(cfg.model_dump_json(indent=2) + "\n")
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
        accelerator.wait_for_everyone()
        return out
