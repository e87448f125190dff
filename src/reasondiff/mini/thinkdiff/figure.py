"""The docs' picture of SynthWorld-CoBSAT: episodes (demos, query) and each method's image, from a bench folder.

One row per episode: the demo stills with their texts, the query text with the target, then the image of each
method as the bench saved it (`OUT/images/<task>/<index>_<method>.png`), framed green when the judge read both
task attributes right and red otherwise (from `OUT/cases.jsonl`).

    python -m reasondiff.mini.thinkdiff.figure BENCH_OUT docs/figures/thinkdiff_mini_2shot.png
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import typer

from .bench import METHODS
from .tasks import TABLE, episodes

CELL, PAD, TEXT = 64, 4, 14


def _cell(image: PIL.Image.Image, label: str, frame: tuple[int, int, int] | None = None) -> PIL.Image.Image:
    out = PIL.Image.new("RGB", (CELL + 2 * PAD, CELL + 2 * PAD + TEXT), "white")
    if frame:
        out.paste(frame, (0, 0, CELL + 2 * PAD, CELL + 2 * PAD))
    out.paste(image.resize((CELL, CELL)), (PAD, PAD))
    PIL.ImageDraw.Draw(out).text((PAD, CELL + 2 * PAD), label[:13], fill="black")
    return out


def _blank(text: str) -> PIL.Image.Image:
    out = PIL.Image.new("RGB", (CELL, CELL), (235, 235, 235))
    draw = PIL.ImageDraw.Draw(out)
    for i, line in enumerate(text.split("\n")):
        draw.text((3, 3 + 12 * i), line[:12], fill="black")
    return out


def episode_row(out: Path, task_id: int, index: int, shot: int, cases: int, seed: int, rows: dict) -> list:
    prompt = episodes(task_id, shot, max(cases, index + 1), seed)[index]
    cells = [_cell(img, text.strip()) for img, text in zip(prompt.images, prompt.texts, strict=False)]
    want = "\n".join(f"{k}: {v}" for k, v in {prompt.task.object: prompt.target_object,
                                              prompt.task.detail: prompt.target_detail}.items())
    cells.append(_cell(_blank(f"{prompt.texts[-1].strip()} ?\n\n{want}"), prompt.task.name))
    for method in METHODS:
        path = out / "images" / prompt.task.name / f"{index}_{method}.png"
        row = rows.get((method, prompt.task.name, index))
        if path.is_file() and row is not None:
            frame = (40, 170, 60) if row["correct"] else (200, 40, 40)
            cells.append(_cell(PIL.Image.open(path).convert("RGB"), method, frame))
    return cells


def contact_sheet(out: str | Path, shot: int, seed: int, task_ids=None, index: int = 0) -> PIL.Image.Image:
    """One row per task (its episode `index`): demos, query with target, each method's judged image."""
    out = Path(out)
    rows = {}
    for line in (out / "cases.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["shot"] == shot:
            rows[(r["method"], r["task"], r["index"])] = r
    lines = [episode_row(out, t, index, shot, index + 1, seed, rows) for t in (task_ids or TABLE.order)]
    width = max(sum(c.width for c in cells) for cells in lines) + 2 * PAD  # gaps: demos | query | methods
    height = CELL + 2 * PAD + TEXT
    sheet = PIL.Image.new("RGB", (width, height * len(lines)), "white")
    for y, cells in enumerate(lines):
        x = 0
        for cell in cells:
            sheet.paste(cell, (x, y * height))
            x += cell.width + (PAD if cell is cells[shot - 1] or cell is cells[shot] else 0)
    return sheet


def main(bench: Path, png: Path, shot: int = 2, seed: int = 1, index: int = 0) -> None:
    """Write the contact sheet of a bench folder (its `--shots`, `--seed`) to PNG."""
    png.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(bench, shot, seed, index=index).save(png)
    typer.echo(f"wrote {png} ({np.asarray(PIL.Image.open(png)).shape[1]} px wide)")


if __name__ == "__main__":
    typer.run(main)
