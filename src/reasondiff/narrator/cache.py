"""A content-addressed answer cache on disk, so a repeated narration costs no request and no GPU time.

The key hashes everything that changes the answer: the image's pixels, the prompt, the frame count, the backend's
`cache_id` (model, server, generation settings) and INSTRUCTION_VERSION. Files are written to a temporary name in
the same folder and `os.replace`d into place, which is atomic: concurrent processes may both compute an answer,
but a reader only ever sees a whole file. A file that cannot be read is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

ENV_VAR = "REASONDIFF_CACHE"


def default_cache_dir() -> Path:
    """`$REASONDIFF_CACHE/narrator` when set, else `~/.cache/reasondiff/narrator`."""
    root = os.environ.get(ENV_VAR)
    return Path(root) / "narrator" if root else Path.home() / ".cache" / "reasondiff" / "narrator"


def cache_key(**fields: Any) -> str:
    """sha256 of the fields as canonical JSON (sorted keys), so the same request always has the same key."""
    blob = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class AnswerCache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any | None:
        try:
            return json.loads(self.path(key).read_text(encoding="utf-8"))["value"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, value: Any, **about: Any) -> Path:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"key": key, "about": about, "value": value}, f, ensure_ascii=False, default=str)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json")) if self.root.is_dir() else 0
