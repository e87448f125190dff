"""Two-stage ReasonDiff training (paper §3.4, Algorithm 1, Eq. 1 and 6) with accelerate and peft.

Stage 1 trains a LoRA on the Wan DiT together with the AlignFormer under the flow-matching loss;
stage 2 freezes the DiT and its LoRA and trains the AlignFormer alone with the added reconstruction
term beta * ||c* - c||^2. The condition is built by `reasondiff.conditioning`, the same
code the pipeline runs at inference. Stage 0 trains a plain image-to-video DiT (Wan's conditioning:
the first frame, one prompt) with all its weights: the base model of a world without pretrained
weights (SynthWorld), and that world's "Wan2.1" baseline. `conditioning` selects the paper's
ablations for stages 1-2: without enhanced latents (Wan's condition at the narrated frame) or
without multi-prompts (the clip's one prompt for every frame).

Reproducibility: every random choice of a sample (its condition frame, noise, noise level) is a
function of (seed, epoch, sample index), and the data order a function of (seed, epoch). A resumed
run therefore replays exactly what an uninterrupted one would have done, and a run on N processes sees
the same samples and noise per optimizer step as one process: `batch_size` is the global batch.

Distributed training: the networks a stage trains are one `StageModules`, prepared once, so DDP, FSDP2
and DeepSpeed each see one model; the loss is computed inside its forward (see `modules.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator, init_empty_weights
from accelerate.utils import DistributedType, ProjectConfiguration
from diffusers import WanTransformer3DModel
from diffusers.optimization import get_scheduler
from diffusers.utils import convert_unet_state_dict_to_peft
from huggingface_hub import load_torch_model, save_torch_state_dict
from peft import LoraConfig, set_peft_model_state_dict
from peft.utils import get_peft_model_state_dict
from tqdm.auto import tqdm

from ..data.cache import write_cache
from ..data.dataset import CachedClipDataset, collate_clips
from ..models import tiny_wan
from ..models.alignformer import AlignFormer
from ..models.attention import FrameLayout, install_framewise_attention
from ..conditioning import anchor_latent_index, condition_mask, enhanced_condition, frame_contexts, narratives_per_frame
from ..pipelines.hub import LORA_FILE
from ..pipelines.pipeline_reasondiff import ReasonDiffPipeline
from .augment import generic_embedding, replace_frame_prompts
from .checkpoints import STATE_FILE, file_sizes, newest_usable
from .config import TrainConfig
from .distributed import per_device_batch, use_deepspeed_on_cpu, use_fsdp_on_cpu
from .flow_matching import NUM_TRAIN_TIMESTEPS, noisy_latents, sample_sigma, timestep_weight, velocity_target
from .modules import StageModules, cast_frozen

logger = logging.getLogger(__name__)


def sample_generator(seed: int, epoch: int, index: int, stream: str = "") -> torch.Generator:
    """The random stream of one sample in one epoch, identical in every process and every resumed run; `stream`
    names an independent one (e.g. the augmentation's), leaving the noise stream as it was."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{index}{':' + stream if stream else ''}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _write_module(module, state: dict[str, torch.Tensor], folder: Path) -> None:
    """A diffusers model folder (config + safetensors, sharded above 10 GB) from a gathered state dict."""
    module.save_config(folder)
    save_torch_state_dict(state, folder, filename_pattern="diffusion_pytorch_model{suffix}.safetensors",
                          max_shard_size="10GB")


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v.detach().cpu().contiguous() for k, v in state.items() if k.startswith(prefix)}


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
        use_fsdp_on_cpu(self.accelerator)
        use_deepspeed_on_cpu(self.accelerator)
        self.per_device_batch = per_device_batch(config.batch_size, self.accelerator.num_processes,
                                                 config.gradient_accumulation_steps)
        self.weight_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.mixed_precision, torch.float32)
        self.checkpoint_dir = config.output_dir / "checkpoints"
        self.dataset = self._dataset()
        if len(self.dataset) < config.batch_size:
            raise ValueError(f"the cache holds {len(self.dataset)} clips, fewer than one global batch ({config.batch_size})")
        self.resume_from = self._resume_point()
        self.generic = None  # the narrator-error sentence's embedding, when that augmentation is on
        if config.narrator_error is not None and config.stage > 0 and config.conditioning != "no_multi_prompt":
            self.generic = generic_embedding(config.cache_dir, config.model, config.narrator_error.sentence,
                                             self.dataset.meta["context_len"], self.accelerator)
        self.transformer, self.alignformer = self._models()
        self.layout = install_framewise_attention(self.transformer)
        # The one module accelerate prepares: everything this stage trains (see modules.py).
        self.model = StageModules(self.alignformer, self.transformer if config.stage in (0, 1) else None)
        self.history: list[dict[str, float]] = []  # per optimizer step, averaged over processes

    # ------------------------------------------------------------------ setup

    def _dataset(self) -> CachedClipDataset:
        cfg = self.config
        if cfg.toy_data is not None and not (cfg.cache_dir / "meta.json").exists():
            if self.accelerator.is_main_process:
                from ..data.toy import toy_clips

                c = tiny_wan.wan_components(seed=0)
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

    def _load_transformer(self) -> WanTransformer3DModel:
        """The DiT as diffusers loads it: frozen weights in the compute dtype, `_keep_in_fp32_modules` in fp32,
        read shard by shard (low CPU memory) and left on the CPU until accelerate places or shards it."""
        cfg = self.config
        if self._shapes_only:  # parameters on meta, buffers (rope tables, never in a checkpoint) real
            with init_empty_weights(include_buffers=False):
                return WanTransformer3DModel.from_config(self._transformer_config())
        if cfg.transformer_config is not None:
            torch.manual_seed(cfg.seed)
            return WanTransformer3DModel(**cfg.transformer_config)
        if cfg.model == "tiny":
            return tiny_wan.wan_components(seed=0)["transformer"]
        return WanTransformer3DModel.from_pretrained(cfg.model, subfolder="transformer", dtype=self.weight_dtype,
                                                     low_cpu_mem_usage=True)

    def _transformer_config(self) -> dict:
        cfg = self.config
        if cfg.transformer_config is not None:
            return cfg.transformer_config
        if cfg.model == "tiny":
            return tiny_wan.transformer_config()
        return WanTransformer3DModel.load_config(cfg.model, subfolder="transformer")

    @property
    def _shapes_only(self) -> bool:
        """FSDP's cpu_ram_efficient_loading: only the main process reads the DiT, the others build it on the meta
        device and receive the weights from it while sharding (stage 2's DiT is not sharded: every process reads it)."""
        plugin = getattr(self.accelerator.state, "fsdp_plugin", None)
        return (self.accelerator.distributed_type == DistributedType.FSDP and not self.accelerator.is_main_process
                and self.config.stage in (0, 1) and bool(getattr(plugin, "cpu_ram_efficient_loading", False)))

    def _models(self) -> tuple[WanTransformer3DModel, AlignFormer | None]:
        cfg, meta = self.config, self.dataset.meta
        if self.uses_condition_videos and not meta.get("condition_videos"):
            raise ValueError(f"stage {cfg.stage} / {cfg.conditioning} trains on whole condition videos: build the "
                             "cache with condition_videos=True")
        init = cfg.init_from
        if init is not None and self.uses_alignformer and not (init / "alignformer").is_dir():
            raise ValueError(f"init_from={init} has no alignformer/ folder (expected a stage-1 export)")
        if cfg.stage == 2 and not (init / LORA_FILE).is_file():
            raise ValueError(f"stage 2 needs the stage-1 LoRA: {init / LORA_FILE} not found")
        transformer = self._load_transformer()
        if transformer.config.text_dim != meta["text_dim"]:
            raise ValueError(f"the DiT reads {transformer.config.text_dim}-d text, the cache holds {meta['text_dim']}-d")
        transformer.requires_grad_(cfg.stage == 0)  # stage 0 trains every weight; later stages a LoRA at most

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
        # Frozen weights in the compute precision, trainable ones fp32 masters (as diffusers' LoRA scripts do).
        cast_frozen(transformer, self.weight_dtype)
        return transformer, alignformer

    # ------------------------------------------------------------------ loss

    def _condition(self, batch: dict, contexts, frame_to_context, context_lengths, device):
        """DiT condition channels for the batch, and c* (None where no AlignFormer runs)."""
        cfg = self.config
        positions = batch["anchor_position"].tolist()
        num_frames = batch["caption_index"].shape[1]
        if self.uses_condition_videos:  # Wan's own condition: the encoded zero video holding the frame
            video = batch["condition_video"].to(device)
            mask = condition_mask(positions, num_frames, *video.shape[-2:], 0.0, device=device)
            return torch.cat([mask, video], dim=1), None
        narratives, narrative_mask = narratives_per_frame(contexts, frame_to_context, context_lengths)
        return enhanced_condition(self.alignformer, batch["anchor_latent"].to(device), positions, num_frames,
                                  narratives, narrative_mask, cfg.predicted_mask_value)

    def _inputs(self, batch: dict, epoch: int) -> dict:
        """Everything a training step reads that no trained weight produces: noise, noise levels, contexts."""
        cfg, device = self.config, self.accelerator.device
        latents = batch["latents"].to(device)  # x (x1 in the paper), also c of Eq. 6
        noise, sigma = [], []
        for index in batch["index"].tolist():
            g = sample_generator(cfg.seed, epoch, index)
            noise.append(torch.randn(latents.shape[1:], generator=g))
            sigma.append(sample_sigma(g, cfg.timestep_sampling, cfg.shift, cfg.logit_mean, cfg.logit_std))
        text_embeds, text_lengths, caption_index = batch["text_embeds"], batch["text_lengths"], batch["caption_index"]
        if cfg.stage == 0 or cfg.conditioning == "no_multi_prompt":  # the clip's one prompt, every frame
            caption_index = batch["prompt_index"][:, None].expand_as(caption_index)
        elif self.generic is not None:
            streams = [sample_generator(cfg.seed, epoch, i, "narrator_error") for i in batch["index"].tolist()]
            text_embeds, text_lengths, caption_index = replace_frame_prompts(
                text_embeds, text_lengths, caption_index, self.generic, streams, cfg.narrator_error.p,
                cfg.narrator_error.frames)
        contexts, frame_to_context, context_lengths = frame_contexts(text_embeds.to(device), text_lengths.to(device),
                                                                     caption_index.to(device))
        return {"batch": batch, "latents": latents, "noise": torch.stack(noise).to(device),
                "sigma": torch.tensor(sigma, device=device), "contexts": contexts, "frame_to_context": frame_to_context,
                "context_lengths": context_lengths}

    def _denoise(self, transformer, inputs: dict, condition: torch.Tensor) -> torch.Tensor:
        latents, noise, sigma, contexts = inputs["latents"], inputs["noise"], inputs["sigma"], inputs["contexts"]
        image_embeds = inputs["batch"]["image_embeds"].to(latents.device, self.weight_dtype)
        layout = FrameLayout(inputs["frame_to_context"], image_len=image_embeds.shape[1], context_len=contexts.shape[2])
        hidden = torch.cat([noisy_latents(latents, noise, sigma), condition], dim=1).to(self.weight_dtype)
        # Set, not scoped: gradient checkpointing re-runs the blocks during backward, which must see this layout too.
        self.layout.layout = layout
        with self.accelerator.autocast():
            return transformer(
                hidden_states=hidden, timestep=sigma * NUM_TRAIN_TIMESTEPS,
                encoder_hidden_states=contexts.flatten(1, 2).to(self.weight_dtype),
                encoder_hidden_states_image=image_embeds, return_dict=False,
            )[0]

    def _step(self, modules: StageModules, inputs: dict):
        """The part of a training step that uses trained weights; runs inside the prepared module's forward."""
        condition, c_star = self._condition(inputs["batch"], inputs["contexts"], inputs["frame_to_context"],
                                            inputs["context_lengths"], inputs["latents"].device)
        if modules.transformer is None:  # stage 2: the frozen DiT runs outside, see compute_loss
            return condition, c_star
        return self._denoise(modules.transformer, inputs, condition), c_star

    def _flow_loss(self, prediction: torch.Tensor, target: torch.Tensor, sigma: torch.Tensor,
                   anchor_index: torch.Tensor) -> torch.Tensor:
        """Eq. 1, plus `anchor_weight` times the same error on each sample's anchor latent frame: uniform over 5
        latent frames the anchor gets a fifth of the loss, and the image the video must land on is then copied
        loosely (docs/training.md, `anchor_weight`)."""
        error = (prediction.float() - target.float()).pow(2)  # [B, C, F, h, w]
        per_sample = error.flatten(1).mean(1)
        if self.config.anchor_weight:
            at_anchor = error[torch.arange(len(error), device=error.device), :, anchor_index]  # [B, C, h, w]
            per_sample = per_sample + self.config.anchor_weight * at_anchor.flatten(1).mean(1)
        if self.config.weighting == "gaussian":
            per_sample = timestep_weight(sigma, self.config.shift) * per_sample
        return per_sample.mean()

    def compute_loss(self, batch: dict, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. 1 (stages 0 and 1), Eq. 6 (stage 2) for one batch, as this process sees it."""
        cfg = self.config
        inputs = self._inputs(batch, epoch)
        output, c_star = self.model(self._step, inputs)
        prediction = output if self.config.stage != 2 else self._denoise(self.transformer, inputs, output)
        latents = inputs["latents"]
        target = velocity_target(latents, inputs["noise"])
        anchor_index = anchor_latent_index(inputs["batch"]["anchor_position"].tolist(),
                                           inputs["batch"]["caption_index"].shape[1], latents.device)
        flow = self._flow_loss(prediction, target, inputs["sigma"], anchor_index)  # Eq. 1
        logs = {"flow": flow.item()}
        loss = flow
        if c_star is not None:
            reconstruction = F.mse_loss(c_star, latents)  # ||c* - c||^2 of Eq. 6
            logs["reconstruction"] = reconstruction.item()
            if cfg.stage == 2:
                loss = flow + cfg.beta * reconstruction
        return loss, {"loss": loss.item(), **logs}

    # ------------------------------------------------------------------ checkpoints

    @property
    def _sharded(self) -> bool:
        """FSDP and DeepSpeed write the prepared module in their own sharded formats; other runs save only what
        training changes (AlignFormer, LoRA) as safetensors through the hooks below."""
        return self.accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)

    def write_trainable(self, modules: StageModules, state: dict[str, torch.Tensor], folder: Path) -> None:
        """What the stage trains, from `state` (keys of `StageModules`), in the layouts the pipeline loads."""
        if modules.alignformer is not None:
            _write_module(modules.alignformer, _part(state, "alignformer."), folder / "alignformer")
        if modules.transformer is not None and self.config.stage == 0:
            _write_module(modules.transformer, _part(state, "transformer."), folder / "transformer")
        elif modules.transformer is not None:
            lora = get_peft_model_state_dict(modules.transformer, state_dict=_part(state, "transformer."))
            ReasonDiffPipeline.save_lora_weights(folder, transformer_lora_layers=lora, safe_serialization=True)

    def _read_trainable(self, modules: StageModules, folder: Path) -> None:
        if modules.alignformer is not None:
            load_torch_model(modules.alignformer, folder / "alignformer")
        if modules.transformer is not None and self.config.stage == 0:
            load_torch_model(modules.transformer, folder / "transformer")
        elif modules.transformer is not None:
            state = ReasonDiffPipeline.lora_state_dict(str(folder))
            state = {k.removeprefix("transformer."): v for k, v in state.items() if k.startswith("transformer.")}
            set_peft_model_state_dict(modules.transformer, convert_unet_state_dict_to_peft(state), adapter_name="default")

    def _register_hooks(self):
        accelerator = self.accelerator

        def save_hook(models, weights, output_dir):
            if self._sharded:
                return
            for model in models:
                unwrapped = accelerator.unwrap_model(model)
                self.write_trainable(unwrapped, unwrapped.state_dict(), Path(output_dir))
            weights.clear()  # the frozen DiT is never written: it is the `model:` the config names

        def load_hook(models, input_dir):
            while models and not self._sharded:
                self._read_trainable(accelerator.unwrap_model(models.pop()), Path(input_dir))

        accelerator.register_save_state_pre_hook(save_hook)
        accelerator.register_load_state_pre_hook(load_hook)

    def _checkpoints(self) -> list[Path]:
        """Checkpoint folders, oldest first (a folder gets its name once written; see checkpoints.py for damage)."""
        if not self.checkpoint_dir.is_dir():
            return []
        done = [p for p in self.checkpoint_dir.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp")]
        return sorted(done, key=lambda p: int(p.name.split("-")[1]))

    def _resume_point(self) -> Path | None:
        """The newest undamaged checkpoint; newer damaged ones are named in a warning and skipped."""
        latest, warnings = newest_usable(self._checkpoints())
        if self.accelerator.is_main_process:
            for warning in warnings:
                print(f"warning: {warning}", file=sys.stderr, flush=True)
        return latest

    def save_checkpoint(self, step: int, epoch: int, batches_done: int) -> None:
        final = self.checkpoint_dir / f"step-{step:08d}"
        tmp = final.with_name(final.name + ".tmp")
        if self.accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp))
        self.accelerator.wait_for_everyone()  # every process's shards are written before they are listed
        if self.accelerator.is_main_process:
            state = {"step": step, "epoch": epoch, "batches_done": batches_done, "files": file_sizes(tmp)}
            (tmp / STATE_FILE).write_text(json.dumps(state) + "\n")
            if final.exists():  # a damaged checkpoint this run resumed before: set aside (ignored as .tmp), then gone
                stale = final.with_name(final.name + ".damaged.tmp")
                shutil.rmtree(stale, ignore_errors=True)
                os.replace(final, stale)
                shutil.rmtree(stale)
            os.replace(tmp, final)  # atomic: a checkpoint folder is either absent or complete
            for old in self._checkpoints()[: -self.config.keep_last]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()

    def _resume(self) -> tuple[int, int, int]:
        """(step, epoch, batches done in that epoch) of the checkpoint chosen at start-up, or zeros."""
        if self.resume_from is None:
            return 0, 0, 0
        self.accelerator.load_state(str(self.resume_from))
        state = json.loads((self.resume_from / STATE_FILE).read_text())
        if self.accelerator.is_main_process:
            print(f"resuming from step {state['step']} (checkpoint {self.resume_from})", file=sys.stderr, flush=True)
        return state["step"], state["epoch"], state["batches_done"]

    # ------------------------------------------------------------------ loop

    def _loader(self, epoch: int):
        """This epoch's batches for this process. The shuffled order is cut to whole global batches: the
        remainder (different samples each epoch) is dropped, never repeated, so no sample counts twice."""
        cfg = self.config
        order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(cfg.seed + epoch))
        order = order[: len(self.dataset) // cfg.batch_size * cfg.batch_size]
        self.dataset.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(self.dataset, order.tolist()), batch_size=self.per_device_batch, drop_last=True,
            collate_fn=collate_clips, num_workers=cfg.num_workers,
        )
        return self.accelerator.prepare(loader)

    def _mean_over_processes(self, sums: dict[str, float], count: int) -> dict[str, float]:
        """The step's logs averaged over its micro-batches and over every process (a collective call)."""
        keys = sorted(sums)
        values = torch.tensor([sums[k] / count for k in keys], device=self.accelerator.device, dtype=torch.float64)
        values = self.accelerator.reduce(values, reduction="mean")
        return dict(zip(keys, values.tolist()))

    def _prepare(self, total_steps: int):
        """Prepare the one trainable module with its optimizer and schedule."""
        cfg, accelerator = self.config, self.accelerator
        if accelerator.distributed_type == DistributedType.DEEPSPEED:  # its engine wants the micro-batch up front
            accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = self.per_device_batch
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        # accelerate steps a prepared schedule once per process per optimizer step: count in those units.
        n = accelerator.num_processes
        lr_scheduler = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=cfg.lr_warmup_steps * n,
                                     num_training_steps=total_steps * n)
        self.model, optimizer, lr_scheduler = accelerator.prepare(self.model, optimizer, lr_scheduler)
        if self.config.stage == 2:  # the frozen DiT is not part of the prepared module: place it ourselves
            self.transformer.to(accelerator.device)
        self._register_hooks()
        return optimizer, lr_scheduler

    def train(self) -> Path:
        """Run (or resume) training; returns the export folder (alignformer/ + LoRA, or transformer/)."""
        cfg, accelerator = self.config, self.accelerator
        steps_per_epoch = len(self.dataset) // cfg.batch_size
        total_steps = cfg.max_steps or steps_per_epoch * cfg.num_epochs
        optimizer, lr_scheduler = self._prepare(total_steps)
        if accelerator.is_main_process and cfg.report_to != "none":
            accelerator.init_trackers("reasondiff", config=json.loads(cfg.model_dump_json()))
        step, start_epoch, skip = self._resume()

        progress = tqdm(total=total_steps, initial=step, desc=f"stage {cfg.stage}", unit="step",
                        disable=not accelerator.is_local_main_process)
        batches_per_epoch = steps_per_epoch * cfg.gradient_accumulation_steps  # per process
        for epoch in range(start_epoch, cfg.num_epochs):
            if step >= total_steps:
                break
            loader = self._loader(epoch)
            batches_done = skip if epoch == start_epoch else 0
            if batches_done:
                loader = accelerator.skip_first_batches(loader, batches_done)
            sums, count = {}, 0
            for batch in loader:
                with accelerator.accumulate(self.model):
                    loss, logs = self.compute_loss(batch, epoch)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad()
                batches_done += 1
                sums, count = {k: sums.get(k, 0.0) + v for k, v in logs.items()}, count + 1
                if not accelerator.sync_gradients:
                    continue
                step += 1
                logs, sums, count = self._mean_over_processes(sums, count), {}, 0
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
        1-2), or `transformer/` (stage 0, loadable as `model:` of a later stage). Under FSDP/ZeRO-3 the full
        weights are gathered first (every process takes part)."""
        cfg, accelerator = self.config, self.accelerator
        state = accelerator.get_state_dict(self.model)
        out = cfg.output_dir / "export"
        if accelerator.is_main_process:
            tmp = out.with_name("export.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self.write_trainable(accelerator.unwrap_model(self.model), state, tmp)
            if cfg.stage == 2:  # the LoRA stage 2 ran on, so the export is complete on its own
                shutil.copy2(cfg.init_from / LORA_FILE, tmp / LORA_FILE)
            (tmp / "train_config.json").write_text(cfg.model_dump_json(indent=2) + "\n")
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
        accelerator.wait_for_everyone()
        return out
