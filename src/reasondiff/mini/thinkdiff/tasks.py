"""SynthWorld-CoBSAT: CoBSAT's in-context format over SynthWorld's attributes, on held-out scenes.

Each task pairs two attributes, as CoBSAT pairs an object category with a detail category: in "-I"
the texts name the detail and the object is latent, in "-II" the reverse. Four pairs, eight tasks:

    Room-I    texts name rooms, the agent is latent      Room-II    texts name agents, the room is latent
    Object-I  texts name objects, the agent is latent    Object-II  texts name agents, the object is latent
    Place-I   texts name rooms, the object is latent     Place-II   texts name objects, the room is latent
    State-I   texts name states, the object is latent    State-II   texts name objects, the state is latent

Demo images show the two task attributes; the other two are drawn at random per image, so only what the
demos share identifies the latent one. States read as "intact"/"changed" in texts (a word like "broken"
would name the object). The item lists are short (2-4 items), so one episode's texts may repeat an item
(indices wrap round, `cobsat.build_prompts`); episodes come from a seeded permutation file in CoBSAT's
format. Every image is a held-out scene (`mini.world.HELD_OUT_OBJECT_BANDS`). A generated image is right
when the judge reads both task attributes as the target's.
"""

from __future__ import annotations

import numpy as np
import PIL.Image

from ...thinkdiff.cobsat import CoBSATPrompt, Task, TaskTable, build_prompts, object_and_detail
from .stills import SPACES, random_still

PAIRS = [("Room", "room", "agent"), ("Object", "object", "agent"), ("Place", "room", "object"),
         ("State", "state", "object")]
TABLE = TaskTable.from_pairs(SPACES, PAIRS)
SHOTS = (1, 2, 4)
PERMUTATION_SIZE = 12  # a multiple of every list's length (4, 3, 2): wrapped indices stay uniform


def permutations(n: int, seed: int) -> list[dict]:
    """`n` episodes in CoBSAT's permutation format, seeded (the same file for every task and shot)."""
    rng = np.random.default_rng([seed, 19])
    return [{"x_list": rng.permutation(PERMUTATION_SIZE).tolist(), "theta_list": rng.permutation(PERMUTATION_SIZE)
             .tolist()} for _ in range(n)]


def task_attributes(task: Task, x: str, theta: str) -> dict[str, str]:
    obj, detail = object_and_detail(task, x, theta)
    return {task.object: obj, task.detail: detail}


def image_source(seed: int, size: int = 64):
    """`cobsat.build_prompts(images=...)`: a held-out still per (task, prompt, demo), the rest of it random."""

    def render(task: Task, x: str, theta: str, prompt: int, demo: int) -> PIL.Image.Image:
        rng = np.random.default_rng([seed, task.id, prompt, demo])
        return PIL.Image.fromarray(random_still(rng, task_attributes(task, x, theta)).render(size))

    return render


def episodes(task_id: int, shot: int, cases: int, seed: int, size: int = 64) -> list[CoBSATPrompt]:
    """The `cases` episodes of one cell (task, shot)."""
    return build_prompts(None, task_id, shot, permutations(cases, seed), table=TABLE, images=image_source(seed, size))


def target(prompt: CoBSATPrompt) -> dict[str, str]:
    """The two attributes the generated image must show."""
    return {prompt.task.object: prompt.target_object, prompt.task.detail: prompt.target_detail}
