"""VLM folders that transformers' Auto classes cannot open, and how to open them.

`reasondiff.mini` adds the mini VLM's (its processor is rebuilt from saved parts); `thinkdiff` never imports the
world above it. A module of its own so that registering costs `import reasondiff` nothing.
"""

from __future__ import annotations

from collections.abc import Callable

VLM_FOLDER_LOADERS: list[tuple[Callable[[str], bool], Callable[[str], tuple]]] = []  # (is_folder, load)
