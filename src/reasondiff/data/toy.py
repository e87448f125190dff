"""A toy video world for smoke tests and tiny training runs: a coloured square crossing a room.

Each frame's caption names the square's colour and where it is, so the captions carry exactly the
information a model needs to place the square in frame k: enough to see a loss fall in a minute.
"""

from __future__ import annotations

import numpy as np

from .cache import CacheInput

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230), "yellow": (230, 210, 40)}
ROOMS = {"dark": (40, 40, 50), "light": (200, 200, 190)}


def toy_clip(index: int, num_frames: int = 17, size: int = 64, seed: int = 0) -> CacheInput:
    rng = np.random.default_rng([seed, index])
    colour = list(COLOURS)[rng.integers(len(COLOURS))]
    room = list(ROOMS)[rng.integers(len(ROOMS))]
    side = size // 4
    leftwards = bool(rng.integers(2))
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    captions = []
    for t in range(num_frames):
        progress = t / max(num_frames - 1, 1)
        x = int(round((1 - progress if leftwards else progress) * (size - side)))
        frame = np.full((size, size, 3), ROOMS[room], dtype=np.uint8)
        frame[size // 2 - side // 2 : size // 2 + side // 2, x : x + side] = COLOURS[colour]
        frames[t] = frame
        where = "left" if x < size / 3 - side / 2 else "right" if x > 2 * size / 3 - side / 2 else "middle"
        captions.append(f"a {colour} square in the {where} of a {room} room")
    return CacheInput(clip_id=f"toy{index:05d}", frames=frames, captions=captions)


def toy_clips(num_clips: int, num_frames: int = 17, size: int = 64, seed: int = 0):
    for i in range(num_clips):
        yield toy_clip(i, num_frames, size, seed)
