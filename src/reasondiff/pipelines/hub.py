"""The optional parts of a model folder or hub repo: a saved ReasonDiff pipeline's `alignformer/` and a stage-1
LoRA file. Each is looked up on its own (only that part downloaded); a repo without it is not an error."""

from __future__ import annotations

from pathlib import Path

LORA_FILE = "pytorch_lora_weights.safetensors"


def _from_hub(download, repo_id: str, **kwargs) -> Path | None:
    """`download(repo_id, **kwargs)` as a Path, or None when the repo has no such file or cannot be reached
    (offline without a cached copy): the caller then goes on without the optional part, as for a local folder."""
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        return Path(download(repo_id, **kwargs))
    except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError, HFValidationError):
        return None


def find_alignformer(model: str | Path) -> Path | None:
    """The `alignformer/` folder of a saved ReasonDiff pipeline: a local folder, or a hub id whose repo has one
    (only that folder is downloaded, with `allow_patterns`). None for a plain Wan2.1 folder or repo."""
    from huggingface_hub import snapshot_download

    root = Path(str(model))
    if not root.is_dir():
        root = _from_hub(snapshot_download, str(model), allow_patterns=["alignformer/*"])
    folder = root / "alignformer" if root is not None else None
    return folder if folder is not None and (folder / "config.json").is_file() else None


def find_lora(model: str | Path) -> Path | None:
    """The folder holding a stage-1 LoRA (`pytorch_lora_weights.safetensors`) at the top of a local folder or a
    hub repo (that one file downloaded); None when there is none."""
    from huggingface_hub import hf_hub_download

    root = Path(str(model))
    if root.is_dir():
        return root if (root / LORA_FILE).is_file() else None
    found = _from_hub(hf_hub_download, str(model), filename=LORA_FILE)
    return found.parent if found is not None else None
