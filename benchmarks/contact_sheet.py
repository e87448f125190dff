"""Contact sheets for the results docs: for chosen cases, the true clip and each method's video side by side.

The cases are chosen by a rule fixed before any video is looked at — the first case of the benchmark for
each image position (first, middle, last) — so the pictures cannot be picked to flatter a method.
Each block: one row per video (truth first), frames 1, 5, 9, 13, 17 and the frame the condition image belongs
at (framed in yellow).

    python benchmarks/contact_sheet.py bench/unpaired/benchmark.jsonl docs/figures/unpaired.png \\
        truth=bench/unpaired/truth reasondiff=runs/unpaired/videos/reasondiff wan=runs/unpaired/videos/wan
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from reasondiff.evaluation.frame_format import read_video

FRAMES = (1, 5, 9, 13, 17)
CELL, PAD, LABEL = 64, 3, 92


def chosen_cases(rows: list[dict]) -> list[dict]:
    firsts = {}
    for row in rows:
        firsts.setdefault(row["image_end"], row)
    return [firsts[end] for end in ("first", "middle", "last") if end in firsts]


def sheet(rows: list[dict], sources: list[tuple[str, Path]]) -> Image.Image:
    lines = [(row, name, folder) for row in rows for name, folder in sources]
    width = LABEL + (len(FRAMES) + 1) * (CELL + PAD)
    canvas = Image.new("RGB", (width, len(lines) * (CELL + PAD) + len(rows) * 12), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    y = 0
    for index, (row, name, folder) in enumerate(lines):
        if index % len(sources) == 0:
            draw.text((2, y), f"{row['id']}  \"{row['prompt']}\"  image at frame {row['position']}", fill=(0, 0, 0))
            y += 12
        video = read_video(folder / f"{row['id']}.mp4")
        draw.text((2, y + CELL // 2 - 5), name, fill=(0, 0, 0))
        for k, frame in enumerate(sorted(set(FRAMES) | {row["position"]})):
            x = LABEL + k * (CELL + PAD)
            picture = Image.fromarray(video[min(frame, len(video)) - 1]).resize((CELL, CELL), Image.Resampling.NEAREST)
            canvas.paste(picture, (x, y))
            if frame == row["position"]:
                draw.rectangle([x - 1, y - 1, x + CELL, y + CELL], outline=(240, 200, 0), width=2)
        y += CELL + PAD
    return canvas


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("sources", nargs="+", help="NAME=FOLDER of <case id>.mp4 files, in row order")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.benchmark.read_text().splitlines() if line.strip()]
    sources = [(s.split("=", 1)[0], Path(s.split("=", 1)[1])) for s in args.sources]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet(chosen_cases(rows), sources).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
