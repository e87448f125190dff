"""Writes the bundled ThinkDiff episode: what `reasondiff thinkdiff generate` runs when given no --image/--text.

The rule that picks it (fixed before looking at any model's answer): SynthWorld-CoBSAT task 1 (Room-I: the texts
name rooms, the agent is latent), 2 shots, the first episode of seed 0 (the bench uses seed 1, so it is no bench
case). Its images are held-out scenes. Run once; the PNGs and the JSON are committed.
"""

import json
from pathlib import Path

from reasondiff.mini.thinkdiff import tasks

OUT = Path(__file__).resolve().parents[1] / "src/reasondiff/assets/examples"
NAME = "thinkdiff_episode"


def main() -> None:
    episode = tasks.episodes(task_id=1, shot=2, cases=1, seed=0)[0]
    items, images = [], 0
    for item in episode.items():
        if isinstance(item, str):
            items.append({"text": item})
        else:
            images += 1
            name = f"{NAME}_{images}.png"
            item.save(OUT / name)
            items.append({"image": name})
    target = tasks.target(episode)
    spec = {"task": episode.task.name, "items": items, "answer": target,
            "note": "SynthWorld-CoBSAT Room-I, 2 shots: the texts name rooms, every image shows the same agent; the "
                    "right next picture is that agent in the room the last text names."}
    (OUT / f"{NAME}.json").write_text(json.dumps(spec, indent=2) + "\n")
    print(json.dumps(spec, indent=2))


if __name__ == "__main__":
    main()
