"""SynthWorld stills: one frame with four attributes -- agent, object, room, state -- and its caption.

A still is a frame of an event script: before contact with the object intact, or after it with the
agent staying by the changed object, so the agent, the object and its state are all in view. Captions
follow the world's words ("a cat by the broken vase in the kitchen"); any attribute may be left out
("a cat in the kitchen"), which is how the decoder's captions drop attributes and how an oracle names
only what a task asks for. The state reads in the object's own word (broken vase, fallen tower).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..world import AGENTS, HELD_OUT_OBJECT_BANDS, OBJECTS, ROOMS, TRAIN_OBJECT_BANDS, EventScript, draw_object_x

STATES = ("intact", "changed")
ATTRIBUTES = ("agent", "object", "room", "state")
SPACES = {"agent": tuple(AGENTS), "object": tuple(OBJECTS), "room": tuple(ROOMS), "state": STATES}


@dataclass(frozen=True)
class Still:
    agent: str
    object: str
    room: str
    state: str  # "intact" or "changed"
    object_x: float = 0.5
    from_left: bool = True
    moment: int = 0  # which frame of the approach (intact) or of the stay (changed): varies the agent's place

    def script(self) -> EventScript:
        return EventScript(self.agent, self.object, self.room, object_x=self.object_x, from_left=self.from_left,
                           leaves=False)

    def frame_index(self) -> int:
        script = self.script()
        if self.state == "intact":  # approaching: the agent is in, contact is still ahead
            return script.contact - 1 - self.moment % (script.contact - script.enter - 2)
        return script.contact + 1 + self.moment % (script.num_frames - script.contact - 1)

    def render(self, size: int = 64) -> np.ndarray:
        return self.script().render(self.frame_index(), size)

    def attributes(self) -> dict[str, str]:
        return {"agent": self.agent, "object": self.object, "room": self.room, "state": self.state}


def state_word(obj: str, state: str) -> str:
    intact, changed, _ = OBJECTS[obj]
    return intact if state == "intact" else changed


def caption(attributes: dict[str, str | None]) -> str:
    """The world's caption of whichever attributes are given (None or missing = left out); "" for none.

    The state is only said with its object ("the broken vase"): alone it has no word in the world."""
    agent, obj, room, state = (attributes.get(k) for k in ATTRIBUTES)
    parts = []
    if agent:
        parts.append(f"a {agent}")
    if obj:
        thing = f"{state_word(obj, state)} {obj}" if state else obj
        parts.append(f"by the {thing}" if agent else f"the {thing}")
    if room:
        parts.append(f"in the {room}")
    return " ".join(parts)


def random_still(rng: np.random.Generator, fixed: dict[str, str] | None = None, held_out: bool = True) -> Still:
    """A still with `fixed` attributes and the others drawn; held-out scenes put the object where no training
    still has it (mini.world.HELD_OUT_OBJECT_BANDS)."""
    values = {k: (fixed or {}).get(k) or SPACES[k][rng.integers(len(SPACES[k]))] for k in ATTRIBUTES}
    bands = HELD_OUT_OBJECT_BANDS if held_out else TRAIN_OBJECT_BANDS
    return Still(**values, object_x=draw_object_x(rng, bands), from_left=bool(rng.integers(2)),
                 moment=int(rng.integers(4)))
