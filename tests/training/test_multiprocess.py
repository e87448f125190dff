"""Two real processes on CPU (gloo), through the shipped accelerate configs and the trainer's own code.

DDP runs `configs/accelerate/cpu_ddp.yaml`; FSDP2 runs `configs/accelerate/fsdp.yaml` with
`--num_processes 2 --mixed_precision no` (exact float32 comparisons; bf16 autocast is a GPU matter) and
ACCELERATE_USE_CPU=true, which the trainer turns into FSDP2 over gloo (`training/distributed.py`).
Every run is compared with one process at the same global batch (4): float noise from the reduction
order is allowed (1e-4, an update moves these weights by ~1e-3 per step), nothing more.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_trainer import exported_weights, write_config

from reasondiff.training import Trainer, load_config

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("run_trainer.py")
STEPS = {"stage": 1, "max_steps": 4, "checkpoint_every": 2, "keep_last": 2, "learning_rate": 1e-3}


def launch(accelerate_config: str, config: Path, out: Path, *overrides: str, launch_args=()) -> subprocess.Popen:
    # DeepSpeed picks its own CPU accelerator; accelerate's CPU flag would turn the run into plain gloo DDP.
    cpu = {} if accelerate_config.startswith("deepspeed") else {"ACCELERATE_USE_CPU": "true"}
    env = {**os.environ, **cpu, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(ROOT / "configs" / "accelerate" / accelerate_config), "--num_processes", "2",
               "--mixed_precision", "no", *launch_args, str(SCRIPT), str(config), str(out), f"output_dir={out / 'run'}", *overrides]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def finish(process: subprocess.Popen) -> str:
    output = process.communicate(timeout=300)[0].decode()
    assert process.returncode == 0, output[-3000:]
    return output


@pytest.fixture(scope="module")
def reference(tmp_path_factory, toy_cache):
    """One process, global batch 4, 4 steps (checkpoint at 2): weights per step and the logged losses."""
    out = tmp_path_factory.mktemp("one_process")
    config = write_config(out / "c.yaml", cache_dir=toy_cache, output_dir=out / "run", **STEPS)
    trainer = Trainer(load_config(config))
    trainer.train()
    modules = trainer.accelerator.unwrap_model(trainer.model)
    params = {n: p.detach().clone() for n, p in modules.named_parameters() if p.requires_grad}
    return {"config": config, "params": params, "history": trainer.history,
            "export": out / "run" / "export", "step2": out / "run" / "checkpoints" / "step-00000002"}


def rank_files(out: Path, rank: int):
    return load_file(str(out / f"rank{rank}.safetensors")), json.loads((out / f"rank{rank}.json").read_text())


def assert_same_training(export: Path, reference) -> None:
    got, want = exported_weights(export), exported_weights(reference["export"])
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], atol=1e-4, rtol=0)
    early = exported_weights(reference["step2"])  # the tolerance is meaningful: two fewer steps are far outside it
    assert max((early[k] - want[k]).abs().max() for k in want) > 1e-3


def test_ddp_two_processes_agree_and_match_one_process(tmp_path, reference):
    finish(launch("cpu_ddp.yaml", reference["config"], tmp_path))
    (state0, log0), (state1, log1) = rank_files(tmp_path, 0), rank_files(tmp_path, 1)
    assert log0["num_processes"] == 2 and log0["distributed_type"].endswith("MULTI_CPU")
    assert all(torch.equal(state0[k], state1[k]) for k in state0)  # replicas identical
    assert log0["history"] == log1["history"]  # both log the loss averaged over the two processes
    for got, want in zip(log0["history"], reference["history"], strict=True):  # = the loss over the global batch
        assert got["step"] == want["step"] and got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    assert_same_training(tmp_path / "run" / "export", reference)


def test_fsdp_shards_matches_one_process_and_resumes_after_a_kill(tmp_path, reference):
    killed = launch("fsdp.yaml", reference["config"], tmp_path)
    checkpoints = tmp_path / "run" / "checkpoints"
    deadline = time.time() + 240
    while not (checkpoints / "step-00000002").exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)  # the launcher and both workers
    killed.wait()
    first = sorted(p.name for p in checkpoints.iterdir() if not p.name.endswith(".tmp"))[0]
    shards = sorted(p.name for p in (checkpoints / first / "pytorch_model_fsdp_0").iterdir())
    assert shards == [".metadata", "__0_0.distcp", "__1_0.distcp"]  # a sharded checkpoint, one part per process

    output = finish(launch("fsdp.yaml", reference["config"], tmp_path))
    assert "resuming from step" in output
    for rank in (0, 1):  # each process holds its half (dim 0) of every trained weight, equal to one process's
        state, log = rank_files(tmp_path, rank)
        assert log["distributed_type"].endswith("FSDP") and log["num_processes"] == 2
        assert log["dit_read_here"] == (rank == 0)  # cpu_ram_efficient_loading: rank 1 got rank 0's weights
        for name, full in reference["params"].items():
            chunks = torch.chunk(full, 2, dim=0)
            want = chunks[rank] if rank < len(chunks) else full[:0]
            torch.testing.assert_close(state[name], want, atol=1e-4, rtol=0)
    assert_same_training(tmp_path / "run" / "export", reference)


@pytest.mark.parametrize("zero", ["deepspeed_zero2.yaml", "deepspeed_zero3.yaml"])
def test_deepspeed_two_processes_match_one_process(tmp_path, reference, zero):
    """ZeRO-2/3 over gloo with DeepSpeed's CPU accelerator and the shipped configs (needs `deepspeed`). ZeRO-3's
    optimizer offload is switched off: it needs DeepSpeed's compiled CPU Adam, a build this test does not wait for."""
    pytest.importorskip("deepspeed")
    finish(launch(zero, reference["config"], tmp_path, launch_args=("--offload_optimizer_device", "none")))
    (state0, log0), (state1, log1) = rank_files(tmp_path, 0), rank_files(tmp_path, 1)
    assert log0["distributed_type"].endswith("DEEPSPEED") and log0["num_processes"] == 2
    assert log0["history"] == log1["history"] and all(torch.equal(state0[k], state1[k]) for k in state0)
    for got, want in zip(log0["history"], reference["history"], strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    assert (tmp_path / "run" / "checkpoints" / "step-00000004" / "pytorch_model").is_dir()  # DeepSpeed's own format
    assert_same_training(tmp_path / "run" / "export", reference)
