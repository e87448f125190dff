"""AlignFormer and LoRA found through a hub id, read from a hub-layout cache with the hub offline."""

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

from reasondiff import AlignFormer
from reasondiff.models import tiny_wan
from reasondiff.pipelines.hub import LORA_FILE, find_alignformer, find_lora

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """The cache `hf download reasondiff/tiny-export` would leave: refs/main -> a snapshot with the export."""
    repo = tmp_path / "models--reasondiff--tiny-export"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    tiny_wan.alignformer(seed=3).save_pretrained(snapshot / "alignformer")
    save_file({"transformer.blocks.0.attn1.to_q.lora_A.weight": torch.ones(4, 24)}, snapshot / LORA_FILE)
    plain = tmp_path / "models--reasondiff--plain-wan" / "refs"  # a Wan2.1 repo: neither part
    plain.mkdir(parents=True)
    (plain / "main").write_text(COMMIT)
    (plain.parent / "snapshots" / COMMIT).mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return snapshot


def test_a_hub_id_finds_the_alignformer_and_the_lora(hub_cache):
    folder = find_alignformer("reasondiff/tiny-export")
    assert folder == hub_cache / "alignformer"
    loaded, saved = AlignFormer.from_pretrained(folder), tiny_wan.alignformer(seed=3)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), saved.state_dict().values()))
    assert find_lora("reasondiff/tiny-export") == hub_cache
    from reasondiff import ReasonDiffPipeline

    through_pipeline = ReasonDiffPipeline._load_alignformer("reasondiff/tiny-export", torch.bfloat16)
    assert through_pipeline is not None and through_pipeline.dtype == torch.bfloat16  # what from_pretrained adds


def test_a_repo_without_them_and_an_unknown_id_find_nothing(hub_cache):
    assert find_alignformer("reasondiff/plain-wan") is None and find_lora("reasondiff/plain-wan") is None
    assert find_alignformer("reasondiff/not-cached") is None and find_lora("reasondiff/not-cached") is None


def test_local_folders_still_work(hub_cache, tmp_path):
    assert find_alignformer(hub_cache) == hub_cache / "alignformer" and find_lora(hub_cache) == hub_cache
    assert find_alignformer(tmp_path) is None and find_lora(tmp_path) is None
