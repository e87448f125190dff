"""Batch arithmetic and the one adjustment accelerate needs for FSDP2 on CPU processes.

`batch_size` in a config is the global batch: the samples behind one optimizer step, whatever the
number of processes and accumulation steps. The paper's "batch 8" therefore means the same thing on
1 or 8 GPUs, and a learning rate tuned for it stays valid.
"""

from __future__ import annotations

import os

from accelerate import Accelerator, FullyShardedDataParallelPlugin
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType


def per_device_batch(batch_size: int, num_processes: int, accumulation: int) -> int:
    """Samples per process and micro-batch: batch_size / (processes x accumulation), which must be whole."""
    share, remainder = divmod(batch_size, num_processes * accumulation)
    if remainder or share < 1:
        raise ValueError(
            f"batch_size {batch_size} is the global batch and must be a multiple of processes x "
            f"gradient_accumulation_steps = {num_processes} x {accumulation}"
        )
    return share


def use_fsdp_on_cpu(accelerator: Accelerator) -> bool:
    """Turn a gloo (MULTI_CPU) run launched with an FSDP config into an FSDP2 run; True if it did.

    accelerate only switches to FSDP for GPU-like device types, so `accelerate launch --config_file
    configs/accelerate/fsdp.yaml` with ACCELERATE_USE_CPU=true silently falls back to plain gloo DDP
    and never shards. torch's `fully_shard` itself runs on CPU with gloo, so we set the distributed
    type and the plugin (read from the same FSDP_* variables accelerate's launcher sets) that
    accelerate would have set on a GPU. This is how the FSDP tests run the trainer on CPU.
    """
    state = accelerator.state
    wanted = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if not wanted or state.distributed_type != DistributedType.MULTI_CPU:
        return False
    plugin = FullyShardedDataParallelPlugin()
    if accelerator.mixed_precision != "no":
        plugin.set_mixed_precision(accelerator.mixed_precision)
    for shared in (PartialState._shared_state, AcceleratorState._shared_state):
        shared["distributed_type"] = DistributedType.FSDP
    AcceleratorState._shared_state["fsdp_plugin"] = plugin
    return True


def use_deepspeed_on_cpu(accelerator: Accelerator) -> bool:
    """Give a DeepSpeed run on CPU processes its real process count; True if it had to.

    Without an accelerator device, accelerate lets DeepSpeed start its gloo process group but records one
    process (it reads the count from a backend it never chose), so batches would not be split and DeepSpeed's
    batch check fails. We copy rank and world size from the process group DeepSpeed started.
    """
    import torch.distributed as dist

    state = accelerator.state
    if state.distributed_type != DistributedType.DEEPSPEED or not dist.is_initialized():
        return False
    if state.num_processes == dist.get_world_size():
        return False
    fixed = {"num_processes": dist.get_world_size(), "process_index": dist.get_rank(),
             "local_process_index": int(os.environ.get("LOCAL_RANK", dist.get_rank()))}
    for shared in (PartialState._shared_state, AcceleratorState._shared_state):
        shared.update(fixed)
    return True
