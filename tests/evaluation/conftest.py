import json

import pytest
from evalkit import textured
from PIL import Image

from reasondiff.evaluation import tiny_clip

CAPTIONS = [
    ["an intact vase on a table", "a cat enters the room", "the cat knocks the vase", "broken vase on the floor"],
    ["a ball on the floor", "a dog runs toward the ball", "the dog jumps", "the dog leaves the room"],
    ["a tower of blocks", "a child walks to the tower", "the tower is falling", "the tower has fallen"],
    ["a window", "a ball flies toward the window", "the ball hits the window", "the window is shattered"],
]



@pytest.fixture(scope="session")
def clip_scorer():
    return tiny_clip.clip_score(seed=0)


@pytest.fixture
def manifest(tmp_path):
    """A 4-case unpaired benchmark: images at the first or last of 4 captioned frames, prompts from the other end,
    plus an unknown field the runner must ignore."""
    folder = tmp_path / "bench"
    (folder / "images").mkdir(parents=True)
    lines = []
    for i, captions in enumerate(CAPTIONS):
        Image.fromarray(textured(48, seed=i)).save(folder / "images" / f"case{i}.png")
        position = 1 if i % 2 == 0 else 4
        lines.append({"id": f"case{i}", "image": f"images/case{i}.png", "prompt": captions[-1 if position == 1 else 0],
                      "position": position, "captions": captions, "image_end": "first" if position == 1 else "last"})
    path = folder / "benchmark.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path
