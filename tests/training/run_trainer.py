"""Run `Trainer` from a config file, then write what each process holds, for the multi-process tests.

Launched with `accelerate launch` (2 processes) or plain python (1 process). Every process writes
`<out>/rank<i>.safetensors` (its local part of every trainable parameter: the whole tensor under DDP,
its dim-0 shard under FSDP2) and `<out>/rank<i>.json` (the history of logged, process-averaged losses).
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from reasondiff.training import Trainer, load_config


def local(param: torch.Tensor) -> torch.Tensor:
    return (param.to_local() if hasattr(param, "to_local") else param).detach().float().contiguous()


def main(config: str, out: str, *overrides: str) -> None:
    trainer = Trainer(load_config(config, list(overrides)))
    trainer.train()
    modules = trainer.accelerator.unwrap_model(trainer.model)
    rank = trainer.accelerator.process_index
    Path(out).mkdir(parents=True, exist_ok=True)
    save_file({n: local(p) for n, p in modules.named_parameters() if p.requires_grad}, f"{out}/rank{rank}.safetensors")
    Path(f"{out}/rank{rank}.json").write_text(json.dumps({"history": trainer.history,
                                                          "distributed_type": str(trainer.accelerator.distributed_type),
                                                          "num_processes": trainer.accelerator.num_processes,
                                                          "dit_read_here": not trainer._shapes_only}))


if __name__ == "__main__":
    main(*sys.argv[1:])
