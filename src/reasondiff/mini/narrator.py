"""The SynthWorld narrator: GPT-4o's role on this world, played by the world's own rules.

It is a narrator backend (`VisionNarrator("synthworld:")`) that plays the narrator's roles itself
(`narrator.backends.base.NarratingBackend`): the narrator's request checks, cache and provenance apply, and
the script comes back as a `Narration`, with no text in between to parse. It reads the image with the palette
parser, the prompt with the world's lexicon, and reasons with the causal rule (contact by an agent changes
the object for good):

- object changed, no agent in view      -> the image is the end of the story (last frame);
- object changed, agent beside it       -> just after the contact;
- object intact, agent approaching      -> during the approach, by how far the agent still has to go;
- object intact, nobody in view         -> the start (first frame).

The script it writes is the world's canonical event for the prompt's agent and the image's object
and room, timed so that its frame at the answered position shows what the image shows.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import PIL.Image

from ..narrator.schema import Narration
from .palette import ParsedFrame, palette_coverage, parse_frame
from .world import AGENTS, OBJECTS, ROOMS, EventScript

MIN_COVERAGE = 0.5  # rendered frames cover >= 0.96 of their pixels with the palette (0.8 after JPEG), photos < 0.05
MAX_FRAMES = 253  # the mini model's rotary table holds 64 latent frames; placing the image renders 4 per frame
READ_AS_IS = 256  # longest side read at full size (0.14 s at 64 pixels, 1.7 s at 256: candidates render at it)
WORLD_SIZE = 64  # the world's canvas (`EventScript.render`): every shape is drawn on it, so nothing is lost below
UNDERSTANDS = (f"it reads SynthWorld pictures (rooms: {', '.join(ROOMS)}; objects: {', '.join(OBJECTS)}) and "
               f"prompts that name one of its agents ({', '.join(AGENTS)})")
GO_ON = ("for your own picture, write the script yourself (generate -n script.json, or the studio's script table), "
         "or use real weights and an MLLM narrator (--model WAN_FOLDER_OR_HUB_ID --narrator openai:gpt-4o)")

def readable(image) -> np.ndarray:
    """The picture as `[H, W, 3]` uint8, shrunk to the world's 64-pixel canvas when its longer side is over
    `READ_AS_IS`.

    The parser counts every pixel once per palette colour, and `place` renders its candidates at the image's
    size: an 8000x8000 picture took 326 s. Box averaging keeps a flat region's colour exact, so the palette
    still reads it; pictures up to `READ_AS_IS` (all the world's own) are read as they are, bit for bit.
    """
    if not hasattr(image, "convert"):
        pixels = np.asarray(image)
        if max(pixels.shape[:2]) <= READ_AS_IS:
            return pixels
        image = PIL.Image.fromarray(pixels)
    image = image.convert("RGB")
    if max(image.size) > READ_AS_IS:
        scale = WORLD_SIZE / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             PIL.Image.BOX)
    return np.asarray(image)


def _prompt_words(prompt: str) -> tuple[str | None, str | None]:
    text = prompt.lower()
    agent = next((a for a in AGENTS if re.search(rf"\b{a}s?\b", text)), None)
    room = next((r for r in ROOMS if r in text), None)
    return agent, room


def canonical_script(agent: str, obj: str, room: str, num_frames: int, from_left: bool = True,
                     leaves: bool = True, object_x: float = 0.5) -> EventScript:
    """The world's default timing: the agent enters early, contact at the middle frame."""
    contact = (num_frames - 1) // 2
    enter = max(1, round(0.15 * (num_frames - 1)))
    return EventScript(agent=agent, object=obj, room=room, num_frames=num_frames, enter=min(enter, contact - 1),
                       contact=contact, leaves=leaves, from_left=from_left, object_x=object_x)


def _mismatch(seen: ParsedFrame, candidate: ParsedFrame) -> float:
    """How far a candidate frame is from the image (a different state outweighs any difference in position)."""
    cost = 10.0 * (seen.object_state != candidate.object_state) + 10.0 * (seen.impact != candidate.impact)
    cost += 10.0 * ((seen.agent is None) != (candidate.agent is None))
    if seen.agent is not None and candidate.agent is not None:  # where the agent is relative to the object
        cost += abs((seen.agent_x - seen.object_x) - (candidate.agent_x - candidate.object_x))
    return cost


def place(seen: ParsedFrame, agent: str, room: str, num_frames: int, size: int) -> tuple[EventScript, int]:
    """The canonical script and 1-based frame that look most like the image (rules in the module docstring).

    Candidates are rendered and parsed like the image, so both sides are measured the same way. Frames
    that look the same are told apart by the causal rule: an intact object belongs to the start of the
    story, a changed one to its end.
    """
    changed = seen.object_state == OBJECTS[seen.object][1]
    best = None
    for from_left in (True, False):
        for leaves in (True, False):
            script = canonical_script(agent, seen.object, room, num_frames, from_left, leaves)
            for t in range(num_frames):
                key = (_mismatch(seen, parse_frame(script.render(t, size))), -t if changed else t)
                if best is None or key < best[0]:
                    best = (key, script, t + 1)
    return best[1], best[2]


def check_request(image, prompt: str, num_frames: int) -> ParsedFrame:
    """What the image shows, or a ValueError saying what this narrator understands and how to go on.

    The palette parser always finds *some* room and object, even in a photo; without this check a photo
    of a stormy house was narrated, with confidence, as a cat shattering a living-room window.
    """
    if num_frames > MAX_FRAMES:
        raise ValueError(f"the synthworld narrator scripts at most {MAX_FRAMES} frames, got {num_frames}")
    pixels = readable(image)
    seen = parse_frame(pixels)
    coverage = palette_coverage(pixels)
    if seen.object is None or coverage < MIN_COVERAGE:
        what = "no SynthWorld object" if seen.object is None else f"{coverage:.0%} SynthWorld colours"
        raise ValueError(f"the synthworld narrator cannot read this image ({what}): {UNDERSTANDS}; {GO_ON}")
    if _prompt_words(prompt)[0] is None:
        raise ValueError(f"the synthworld narrator finds none of its agents in the prompt {prompt!r}: {UNDERSTANDS}; "
                         f"name one, e.g. 'a cat plays in the {seen.room}'")
    return seen


def narrate_world(image, prompt: str, num_frames: int) -> Narration:
    """Narration for a SynthWorld image and a prompt (ValueError for an image of another world, or a prompt
    without any of the world's agents: see `check_request`)."""
    pixels = readable(image)
    seen = check_request(pixels, prompt, num_frames)
    agent, room = _prompt_words(prompt)
    size = pixels.shape[1]
    script, position = place(seen, agent or seen.agent or "cat", room or seen.room, num_frames, size)
    return Narration(position=position, descriptions=script.captions())


def rewrite_world(image, prompt: str) -> str:
    """One prompt for plain I2V, told from the image onwards (the paper's "rewrite prompt" baseline)."""
    seen = parse_frame(readable(image))
    agent, room = _prompt_words(prompt)
    agent, room = agent or seen.agent or "cat", room or seen.room
    if seen.object is None:
        return prompt
    intact, changed, contact = OBJECTS[seen.object]
    if seen.object_state == changed:
        return f"a {agent} {AGENTS[agent][1]} by the {changed} {seen.object} in the {room}"
    return f"a {agent} {AGENTS[agent][1]} toward the {intact} {seen.object} in the {room}, then the {agent} {contact}"


def caption_world(image) -> str:
    """A caption in the world's grammar for one frame (what the data pipeline asks a captioner for)."""
    seen = parse_frame(readable(image))
    if seen.object is None:
        return f"an empty {seen.room}"
    intact, changed, _ = OBJECTS[seen.object]
    article = "an" if seen.object_state[0] in "aeiou" else "a"
    if seen.agent is None:
        return f"{article} {seen.object_state} {seen.object} in the {seen.room}"
    return f"a {seen.agent} by the {seen.object_state} {seen.object} in the {seen.room}"


class SynthWorldNarrator:
    """The narrator's three roles (narrate, rewrite, caption) played by the world's rules."""

    cache_id = "synthworld-rules-v1"

    def check_request(self, image, prompt: str, num_frames: int) -> None:
        """Refuse, before any model is loaded, what `narrate_world` would refuse."""
        check_request(image, prompt, num_frames)

    def narrate(self, image, prompt: str, num_frames: int) -> Narration:
        return narrate_world(image, prompt, num_frames)

    def rewrite(self, image, prompt: str) -> str:
        return rewrite_world(image, prompt)

    def caption(self, frames) -> list[str]:
        return [caption_world(frame) for frame in frames]


def backend_factory(target: str = "", timeout: float | None = None, **options: Any) -> SynthWorldNarrator:
    """`synthworld:`; a `timeout` is accepted and moot (the rules answer at once, without a request)."""
    if options:
        raise TypeError(f"the synthworld narrator takes no options, got {sorted(options)}")
    return SynthWorldNarrator()
