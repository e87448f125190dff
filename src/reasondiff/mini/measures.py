"""SynthWorld-Bench measures (v3): what the judge reads in a video, checked against the world's rules.

v1 asked "is the object intact in frame 1 and changed from some frame on?", which a two-shot hard cut
(the intact room, then the condition image) passes with full marks. v2 asked what only a continuous story
can satisfy, and v3 (issue #31) closes what v2 still let through on fresh seeds: an agent parked beside the
object the whole clip, one popping in beside it two frames before the change, one vanishing right after the
contact, a crossfade, a story played forward then backward (`mini.degenerate.ADVERSARIAL_V3`).

- **Causal order**: the image's object (and room) throughout; intact first, changed last, one change; the
  prompt's agent *came to the object* as it changed (below); and the video continuous (below).
- **Came to the object**: at the change (or the frame before) the agent stands within `NEAR` of the object,
  and its distance to the object fell, frame by frame (`FALL_TOLERANCE`), over at least `APPROACH_FRAMES`
  frames from at least `FAR` (a third of the width) away. An agent that entered through an edge was beyond
  it before its first frame, so it counts as that far from the edge on (its centre half its width out); one
  there from frame 1 must have been that far at frame 1. And it had arrived: one that goes on toward the object
  at about its approach pace (`KEPT_PACE`) for two frames after the change, still short of it, had not (the
  object changed before it got there); one that arrived stands, or runs on past the object at twice its pace.
- **Continuity**: no agent moves faster than the world's fastest agent or shows for a single frame; an agent
  enters and leaves only through the frame's edges or is there from the first / to the last frame, never
  appearing or vanishing inside the room (`EDGE`, plus the steps it may take unseen, below); objects do not
  jump; the object never returns to an earlier state; an object changes only when an agent came to it; and
  no frame is a blend of two others (a crossfade, a ghost: `blended_frame`, on the pixels).
- **Text adherence**: no agent but the prompt's appears; of the frames in which the true clip shows the
  agent, the share in which the video shows the prompt's agent.
- **Anchor PSNR**: the frame at the true position against the condition image, counted (else 0 dB) only when
  the whole video is continuous: a window around the anchor cannot see a cut a few frames away that
  replaced the story by the pasted image, which is how a two-shot video scored 60 dB in v1.

Readings are smoothed over 3 frames (the majority of each frame and its neighbours), and an agent's sightings
are joined into tracks with one identity (`follow_agents`) before the rules apply, so a misread or washed-out
frame does not fail a true clip, and one pasted frame does not make a story. An agent may go unseen up to
`MAX_GAP` frames inside a track; at a track's ends the same allowance holds: an agent first seen a few steps
into the room may have walked in unseen (washed out by the VAE), so the edge rule allows `EDGE` plus the
steps it takes (its own pace over its first or last frames, `MAX_GAP` of them on the way in; one on the way
out, or `1 + MAX_GAP` for an agent running off at `RUN_OFF` times its pace, which the VAE erases). An agent
that stood still where it was first or last seen gets `EDGE` alone. A track's first and last frames are often
slivers (fewer than `judge.MIN_AGENT_PIXELS`, which the judge is not trained to name or place well, and JPEG
smears inward), so the edge rules and the fall hold from the first frame or from the second (one step more),
and to the last or the one before.

Thresholds come from the world, measured on 1 000 true clips (17 frames; held-out and training bands,
canonical timings), plus the judge's error: the fastest agent moves 0.30 of the width per frame (0.16 at 33
frames); an agent is first seen with its centre within 0.08 of the edge it enters through, and last seen
within 0.20 of the one it leaves through (it flees at twice its pace); its centre is within 0.19 of the
object's at contact, and it approached for at least 4 frames from at least 0.39 away (counting from beyond the
edge); an object's centre shifts by up to 0.10 when it changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .judge import AGENT_CLASSES, IGNORE, OBJECT_CLASSES, ROOM_CLASSES, frame_labels
from .world import EventScript

NEAR = 0.22  # the agent's centre this close to the object's when the object changes (world: <= 0.19)
FAR = 1 / 3  # an agent came to the object from at least this far away...
APPROACH_FRAMES = 3  # ...over at least this many frames (world: >= 4)
FALL_TOLERANCE = 0.06  # reading error allowed on a falling distance
KEPT_PACE = (0.6, 1.5)  # after the change, still coming at this share of its approach pace: it had not arrived
AGENT_HALF_WIDTH = 0.11  # an agent beyond an edge has its centre at least this far out
EDGE_FALL = 0.06  # an agent that came in through an edge came at least this much nearer in view (world: >= 0.11)
EDGE = 0.18  # an agent's centre this close to an edge may enter or leave through it (world: <= 0.08 entering)
OBJECT_STEP = 0.20  # the most an object's centre may move between frames
IDENTITY_SHARE = 0.8  # share of frames that must show the case's object and room
MAX_GAP = 2  # frames an agent may go unseen inside one track
RUN_OFF = 1.5  # an agent whose last steps are this many times its steps before is running off (world: 2)
OFF_PATH = 0.22  # a track's end frame this far off the line through its next two frames is a ghost (world: <= 0.16)
BLEND_RESIDUAL = 0.25  # a frame within this share (RMS) of its distance to the nearer of two others, on the line...
BLEND_MIN_RMS = 2.5  # ...between them, at least this far (RMS, 0-255) from both, is a blend of the two (H.264's
# B-frames average their neighbours where little changes, e.g. an agent's sliver: up to 2.0 RMS at crf 28 on 380
# true clips; a crossfade's frames are 5.9 or more, a ghost fading in 2.8 or more)
BLEND_WEIGHTS = (0.15, 0.85)  # ...and at least this much of each


def fastest_step(num_frames: int) -> float:
    """The largest per-frame move of an agent's centre the world allows at this length, plus reading error."""
    return 0.30 * 16 / max(num_frames - 1, 1) + 0.12


def smooth(labels: np.ndarray) -> np.ndarray:
    """Each frame takes the label most of {previous, itself, next} hold (itself on a three-way tie)."""
    out = labels.copy()
    for t in range(1, len(labels) - 1):
        a, b, c = labels[t - 1], labels[t], labels[t + 1]
        if a == c != b:
            out[t] = a
    return out


@dataclass
class Verdict:
    continuity: bool  # the video could be one continuous shot of the world (no cut, no teleport)
    causal_order: bool
    text_adherence: float
    anchor_psnr: float
    why: str  # the first rule a video broke ("" when it passed them all)


def _tracks(agent: np.ndarray) -> list[tuple[int, int]]:
    runs, start = [], None
    for t, a in enumerate([*agent, 0]):
        if a > 0 and start is None:
            start = t
        elif a <= 0 and start is not None:
            runs.append((start, t - 1))
            start = None
    return runs


def follow_agents(read: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Join an agent's sightings into tracks, each with one identity (the majority of its frames): an agent
    neither changes species nor blinks out. Sightings up to `MAX_GAP` frames apart whose positions the world's
    fastest agent could join are one track, and the gap takes interpolated positions. The mini VAE washes a
    small agent out now and then (a pink pig on the kitchen's wall), and the judge confuses agents' colours
    on some decoded frames; without this, half the true clips through the VAE broke a track rule. A track's
    first or last frame more than `OFF_PATH` off the line through its next two is no sighting: the VAE decodes
    a 4-frame group at once and draws a ghost of the agent in the group's frame before it came into view (a
    pig read at 0.35 of the width, then 0.10, 0.14, 0.22 as it walks in from the left)."""
    agent, x = read["agent"].copy(), read["agent_x"].astype(np.float64)
    step, tracks = fastest_step(len(agent)), []
    for start, end in _tracks(agent):
        if tracks and start - tracks[-1][1] - 1 <= MAX_GAP and abs(x[start] - x[tracks[-1][1]]) <= step * (start - tracks[-1][1]):
            tracks[-1] = (tracks[-1][0], end)
        else:
            tracks.append((start, end))
    for start, end in tracks:
        seen = np.array([t for t in range(start, end + 1) if agent[t] > 0])
        x[start:end + 1] = np.interp(np.arange(start, end + 1), seen, x[seen])
        agent[start:end + 1] = np.bincount(agent[seen]).argmax()
        for t, nxt, after in ((start, start + 1, start + 2), (end, end - 1, end - 2)):
            if end - start >= 3 and abs(x[t] - (2 * x[nxt] - x[after])) > OFF_PATH:
                agent[t] = 0  # a ghost where the VAE smeared the agent into the frame before it came (or after it left)
    return {**read, "agent": agent, "agent_x": x}


def _pace(x: np.ndarray, frames: range) -> float:
    """Mean signed step of a track over `frames` (consecutive indices; 0 when there is no step)."""
    steps = np.diff(x[list(frames)])
    return float(steps.mean()) if len(steps) else 0.0


def _through_an_edge(x: np.ndarray, at: int, pace: float, steps: int) -> str:
    """'' when an agent at `x[at]` moving `pace` per frame (toward the edge it is going through: > 0 right) could be
    beyond an edge within `steps` of its own steps (plus `EDGE`); else where it is."""
    if abs(pace) < 0.01:  # standing: only the nearer edge, and only within EDGE
        distance = min(x[at], 1 - x[at])
        allowed = EDGE
    else:
        distance = 1 - x[at] if pace > 0 else x[at]
        allowed = EDGE + steps * abs(pace)
    return "" if distance <= allowed else f"at {x[at]:.2f} of the width"


def _entered(x: np.ndarray, start: int, end: int) -> str:
    """'' when a track first seen in frame `start` came in through an edge, moving away from it, judged from its
    first frame or, one step further in, from its second (the first is often a sliver: `judge.MIN_AGENT_PIXELS`)."""
    for first, extra in ((start, 0), (start + 1, 1))[:1 + (end - start >= 3)]:
        where = _through_an_edge(x, first, -_pace(x, range(first, min(first + 3, end) + 1)), MAX_GAP + extra)
        if not where:
            return ""
    return f"an agent appears inside the room in frame {start + 1} (at {x[start]:.2f} of the width)"


def _left(x: np.ndarray, start: int, end: int) -> str:
    """'' when a track last seen in frame `end` (before the last) went out through an edge, moving toward it: within
    one of its steps, or `1 + MAX_GAP` of them when it was running off (its last steps at least `RUN_OFF` times its
    steps before: the world's agents flee at twice their pace, and the VAE erases an agent moving that fast). Judged
    from its last frame or, a step further back, the one before (the last is often a sliver)."""
    for last, extra in ((end, 0), (end - 1, 1))[:1 + (end - start >= 3)]:
        pace = _pace(x, range(max(last - 2, start), last + 1))
        before = _pace(x, range(max(last - 5, start), max(last - 2, start) + 1))
        running = pace * before > 0 and abs(pace) >= RUN_OFF * abs(before)
        if not _through_an_edge(x, last, pace, (1 + MAX_GAP if running else 1) + extra):
            return ""
    return f"an agent vanishes inside the room after frame {end + 1} (at {x[end]:.2f} of the width)"


def track_ends(read: dict[str, np.ndarray], start: int, end: int) -> str:
    """'' when a track enters and leaves through the frame's edges (or runs from the first / to the last frame)."""
    x, last = read["agent_x"], len(read["agent_x"]) - 1
    return (_entered(x, start, end) if start > 0 else "") or (_left(x, start, end) if end < last else "")


def blended_frame(frames: np.ndarray) -> str:
    """'' unless some frame is a blend of two others: within `BLEND_RESIDUAL` of the line between them, with at
    least `BLEND_WEIGHTS[0]` of each and `BLEND_MIN_RMS` from both (a crossfade or a ghost; an opaque agent
    walking is never a blend of where it was and where it will be). Distances are RMS on the 0-255 scale,
    computed from the frames' Gram matrix."""
    x = np.asarray(frames, dtype=np.float64).reshape(len(frames), -1)
    if len(x) < 3:
        return ""
    gram = x @ x.T / x.shape[1]
    diag = np.diag(gram)
    squared = np.maximum(diag[:, None] + diag[None, :] - 2 * gram, 0)  # mean squared distance between frames
    for t in range(len(x)):
        # u = x_t - x_b, w = x_a - x_b for every pair (a, b): <u, w>, |w|^2 and |u|^2 from the Gram matrix
        uw = gram[t][None, :] - gram[t][:, None] - gram + diag[:, None]
        ww = squared
        uu = np.broadcast_to(squared[t][:, None], ww.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(ww > 0, uw.T / ww, 0.0)  # weight of a in [a, b] (rows: a, columns: b)
        residual = np.maximum(uu.T - alpha * uw.T, 0)
        near = np.minimum(squared[t][:, None], squared[t][None, :])
        hit = ((alpha >= BLEND_WEIGHTS[0]) & (alpha <= BLEND_WEIGHTS[1]) & (near >= BLEND_MIN_RMS**2)
               & (residual <= BLEND_RESIDUAL**2 * near))
        hit[t, :] = hit[:, t] = False
        if hit.any():
            a, b = np.argwhere(hit)[0]
            return f"frame {t + 1} is a blend of frames {a + 1} and {b + 1} (a crossfade or a ghost)"
    return ""


def continuity(read: dict[str, np.ndarray]) -> str:
    """'' when the reading could be a continuous SynthWorld video, else the first rule it breaks (the pixels'
    rule, `blended_frame`, is checked by `judge_video`)."""
    agent, x = read["agent"], read["agent_x"]
    step = fastest_step(len(agent))
    for start, end in _tracks(agent):
        if start == end:
            return f"an agent seen in frame {start + 1} alone"
        jumps = np.abs(np.diff(x[start:end + 1]))
        if jumps.max(initial=0) > step:
            return f"an agent jumps {jumps.max():.2f} of the width in one frame (at most {step:.2f})"
        broken = track_ends(read, start, end)
        if broken:
            return broken
    jumps = np.abs(np.diff(read["object_x"]))
    if jumps.max(initial=0) > OBJECT_STEP:
        return f"the object jumps {jumps.max():.2f} of the width after frame {int(jumps.argmax()) + 1}"
    back = np.flatnonzero(np.diff(read["changed"]) < 0)
    if len(back):
        return f"the object returns to its earlier state in frame {back[0] + 2}"
    for at in np.flatnonzero(np.diff(read["changed"])) + 1:  # nothing changes an object but an agent's touch
        why = came_to(read, int(at), agent > 0)
        if why:
            return f"the object changes with no agent coming to it (frame {at + 1}): {why}"
    return ""


def _run_start(seen: np.ndarray, at: int) -> int:
    start = at
    while start > 0 and seen[start - 1]:
        start -= 1
    return start


def _kept_coming(x: np.ndarray, seen: np.ndarray, centre: float, at: int, c: int) -> bool:
    """The agent went on toward the object at about its approach pace for two frames after the change, still
    short of it: the object changed before the agent got there. One that arrived stands (pace ~0) or runs on
    past the object at twice its pace or more (the world's flight)."""
    if c < 3 or at + 2 >= len(x) or not (seen[at + 1] and seen[at + 2]):
        return False
    toward = 1.0 if x[c - 3] < centre else -1.0
    before = (x[c] - x[c - 3]) * toward / 3
    after = (x[at + 2] - x[at]) * toward / 2
    short = (x[at + 2] - centre) * toward < 0  # still on the side it came from (one running on has passed it)
    return bool(before >= 0.015 and short and KEPT_PACE[0] * before <= after <= KEPT_PACE[1] * before)


def came_to(read: dict[str, np.ndarray], at: int, seen: np.ndarray) -> str:
    """'' when an agent (the frames `seen` show it) came to the object as it changed in frame `at` (module
    docstring), else why not."""
    centre = float(np.median(read["object_x"]))
    x = read["agent_x"]
    distance = np.abs(x - centre)
    arrived = [c for c in (at, at - 1) if c >= 0 and seen[c] and distance[c] <= NEAR]
    if not arrived:
        return f"no agent within {NEAR:.2f} of it"
    for c in arrived:
        start = _run_start(seen, c)
        falling = c  # back from c while the distance fell (going forward)
        while falling > start and distance[falling - 1] >= distance[falling] - FALL_TOLERANCE:
            falling -= 1
        if _kept_coming(x, seen, centre, at, c):
            continue
        if any(distance[s] >= FAR for s in range(falling, c - APPROACH_FRAMES + 1)):
            return ""
        # it came in through the edge on its side of the object (in frame 1 too: it was coming in), and its
        # distance fell all the way from there (from its first frame, or its second: the first may be a sliver)
        beyond = (centre if x[falling] < centre else 1 - centre) + AGENT_HALF_WIDTH
        if falling <= start + 1 and c - start + 1 >= APPROACH_FRAMES and beyond >= FAR and not _entered(x, start, c) \
                and distance[falling:c + 1].max() - distance[c] >= EDGE_FALL:
            return ""
    return (f"it did not come from {FAR:.2f} of the width away over {APPROACH_FRAMES} frames and stop or run on "
            "when it got there")


def causal_order(read: dict[str, np.ndarray], obj: str, room: str, agent: str | None) -> str:
    """'' when the video tells the story in order (module docstring), else the first rule it breaks; the video
    must also be continuous, which `judge_video` checks once for both columns."""
    if (read["object"] == OBJECT_CLASSES.index(obj)).mean() < IDENTITY_SHARE:
        return f"the {obj} is not the object in most frames"
    if (read["room"] == ROOM_CLASSES.index(room)).mean() < IDENTITY_SHARE:
        return f"the {room} is not the room in most frames"
    changed = read["changed"]
    flips = np.flatnonzero(np.diff(changed))
    if changed[0] != 0 or changed[-1] != 1 or len(flips) != 1:
        return "the object is not intact first and changed last, with one change"
    seen = (read["agent"] == AGENT_CLASSES.index(agent)) if agent else read["agent"] > 0
    why = came_to(read, int(flips[0]) + 1, seen)
    if why:
        return f"no {agent or 'agent'} comes to the object as it changes (frame {int(flips[0]) + 2}): {why}"
    return ""


def text_adherence(read: dict[str, np.ndarray], truth_agent: np.ndarray, agent: str) -> float:
    """0 if another agent shows; else the share of the truth's agent frames that show the prompt's agent."""
    wanted = AGENT_CLASSES.index(agent)
    if np.any((read["agent"] > 0) & (read["agent"] != wanted)):
        return 0.0
    frames = truth_agent > 0
    if not frames.any():
        return float(not (read["agent"] > 0).any())
    return float((read["agent"][frames] == wanted).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


@lru_cache(maxsize=1024)  # every method's video of a case reads the same truth
def truth_agent_frames(script: EventScript, num_frames: int, size: int = 64) -> np.ndarray:
    """Per frame of a `num_frames` video, the agent class the true clip shows (IGNORE where only a sliver shows)."""
    from ..evaluation.frame_format import resample_indices

    labels = np.array([frame_labels(script, t, script.render(t, size))["agent"] for t in range(script.num_frames)])
    return labels[resample_indices(script.num_frames, num_frames)]


def judge_video(judge, frames: np.ndarray, condition: np.ndarray, script: EventScript, position: int,
                agent: str) -> Verdict:
    """Score uint8 `frames` `[T, H, W, 3]` of a case: its true clip `script`, condition image, 1-based position."""
    raw = judge.read(frames)
    read = follow_agents({k: (smooth(v) if k in ("object", "changed", "agent", "room") else v) for k, v in raw.items()})
    broken = continuity(read) or blended_frame(frames)
    order = causal_order(read, script.object, script.room, agent) or broken
    truth = truth_agent_frames(script, len(frames))
    shown = np.where(truth == IGNORE, 0, truth)  # a sliver at the edge asks nothing of the video
    anchor = min(psnr(frames[position - 1], condition), 60.0) if not broken else 0.0
    return Verdict(continuity=not broken, causal_order=not order, text_adherence=text_adherence(read, shown, agent),
                   anchor_psnr=anchor, why=order or broken)


# ------------------------------------------------------------------ as `eval run` / `eval score` columns

class JudgeColumn:
    """One column of the judge's verdict; the columns of one family share one reading per video."""

    def __init__(self, name: str, judge, cache: dict):
        self.name, self.judge, self.cache = name, judge, cache

    def verdict(self, sample) -> Verdict | None:
        world = sample.truth.get("world")
        if world is None or sample.position is None or sample.agent is None:
            return None  # not a SynthWorld-Bench v2 case
        if self.cache.get("sample") is not sample:
            condition = np.asarray(sample.image.convert("RGB").resize(sample.frames.shape[2:0:-1]))
            script = EventScript(**world)
            self.cache.update(sample=sample, verdict=judge_video(self.judge, sample.frames, condition, script,
                                                                 sample.position, sample.agent))
        return self.cache["verdict"]

    def score(self, sample) -> float | None:
        verdict = self.verdict(sample)
        return None if verdict is None else float(getattr(verdict, self.name))


def build_columns(names) -> list[JudgeColumn]:
    from .judge import SceneJudge

    judge, cache = SceneJudge.shipped(), {}
    return [JudgeColumn(name, judge, cache) for name in names]
