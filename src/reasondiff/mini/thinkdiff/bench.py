"""`reasondiff thinkdiff bench`: SynthWorld-CoBSAT, one image per episode and method, judged, with intervals.

Methods (issue #19), every one a real row, the degenerate ones included:

    thinkdiff      the VLM answers the episode; its generated-token features, aligned, are the decoder's prompt
    raw_concat     the decoder reads the episode's texts, concatenated ("kitchen: garden: living room: ")
    query_only     the decoder reads the query text alone
    vlm_text       the VLM's text answer through the decoder's own text encoder
    oracle         the target's true caption (its two task attributes): the ceiling the decoder and judge allow
    random_tokens  random tokens at the aligned tokens' scale (the aligner's RMSNorm of Gaussian noise)

A case is right when the judge reads both task attributes as the target's. Rows go to `OUT/cases.jsonl` as
each episode finishes (a rerun skips what is there: the bench resumes); `OUT/summary.json` holds
`{method: {"accuracy", "ci95"}}` over all tasks of the shot (bootstrap, `evaluation.stats`), and
`OUT/details.json` the per-task accuracies and the VLM's own text accuracy. The models sit behind two small
interfaces -- a `Reasoner` (VLM + aligner) and a `Decoder` (text or tokens -> image) -- so the decoder can be
the mini text-to-image model, ReasonDiff's pipeline through `thinkdiff.inference.render`, or a test double.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import PIL.Image
import torch

from ...data.jsonl import append_rows, read_jsonl, write_atomically
from ...evaluation.stats import bootstrap_ci
from ...thinkdiff.cobsat import CoBSATPrompt
from . import tasks as world_tasks
from .stills import SPACES

METHODS = ("thinkdiff", "raw_concat", "query_only", "vlm_text", "oracle", "random_tokens")
NEEDS_VLM = {"thinkdiff", "vlm_text", "random_tokens"}
EXAMPLES = 2  # images kept per task and method (for the docs' picture); the rest are judged and dropped


class Reasoner(Protocol):
    def answer(self, items: list) -> tuple[torch.Tensor, str]: ...  # (aligned tokens [1, n, D], the VLM's text)

    def random_tokens(self, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...


class Decoder(Protocol):
    def text(self, text: str, seed: int) -> np.ndarray: ...  # uint8 [H, W, 3]

    def tokens(self, tokens: torch.Tensor, seed: int) -> np.ndarray: ...


Judge = Callable[[np.ndarray], dict[str, str | None]]  # uint8 [H, W, 3] -> what it shows, per attribute


def palette_judge(image: np.ndarray) -> dict[str, str | None]:
    """The exact palette parser (`mini.palette`) as a judge: right on renders, blind on blurry generations."""
    from ..palette import parse_frame
    from ..world import OBJECTS

    p = parse_frame(np.asarray(image))
    state = None if p.object is None else ("intact" if p.object_state == OBJECTS[p.object][0] else "changed")
    return {"agent": p.agent, "object": p.object, "room": p.room, "state": state}


def scene_judge(judge=None) -> Judge:
    """The mini's learned judge (`mini.judge.SceneJudge`, the shipped one by default) as a `Judge`."""
    from ..judge import AGENT_CLASSES, OBJECT_CLASSES, ROOM_CLASSES, SceneJudge

    judge = judge or SceneJudge.shipped()

    def read(image: np.ndarray) -> dict[str, str | None]:
        r = {k: int(v[0]) for k, v in judge.read(np.array(image)[None]).items() if k in ("agent", "object", "room",
                                                                                          "changed")}
        return {"agent": AGENT_CLASSES[r["agent"]] if r["agent"] else None, "object": OBJECT_CLASSES[r["object"]],
                "room": ROOM_CLASSES[r["room"]], "state": ("intact", "changed")[r["changed"]]}

    return read


def right(read: dict[str, str | None], target: dict[str, str]) -> bool:
    return all(read.get(k) == v for k, v in target.items())


def mentioned(text: str) -> dict[str, str | None]:
    """The attributes a text names unambiguously (one item of the space; None for none or several)."""
    words = f" {text.lower().replace(':', ' ').replace(',', ' ')} "
    states = {"intact": ("intact", "standing", "full"), "changed": ("broken", "shattered", "fallen", "spilled",
                                                                    "changed")}
    out = {}
    for space, items in SPACES.items():
        said = [i for i in items if any(f" {w} " in words for w in (states[i] if space == "state" else (i,)))]
        out[space] = said[0] if len(said) == 1 else None
    return out


def _method_image(method: str, prompt: CoBSATPrompt, answer, reasoner: Reasoner, decoder: Decoder,
                  seed: int) -> np.ndarray:
    from .stills import caption

    if method == "thinkdiff":
        return decoder.tokens(answer[0], seed)
    if method == "random_tokens":
        return decoder.tokens(reasoner.random_tokens(answer[0], torch.Generator().manual_seed(seed)), seed)
    text = {"raw_concat": lambda: "".join(prompt.texts).strip(), "query_only": lambda: prompt.texts[-1].strip(),
            "vlm_text": lambda: answer[1], "oracle": lambda: caption(world_tasks.target(prompt))}[method]()
    return decoder.text(text, seed)


def run_episode(prompt: CoBSATPrompt, methods: Sequence[str], reasoner: Reasoner, decoder: Decoder, judge: Judge,
                seed: int, out: Path | None = None) -> list[dict]:
    """One row per method: what the judge read, right or not (and the VLM's answer, once per episode)."""
    answer = reasoner.answer(prompt.items()) if NEEDS_VLM & set(methods) else (None, None)
    case_seed = seed * 1_000_003 + prompt.task.id * 10_007 + prompt.index
    target = world_tasks.target(prompt)
    rows = []
    for method in methods:
        image = _method_image(method, prompt, answer, reasoner, decoder, case_seed)
        read = judge(image)
        rows.append({"method": method, "task": prompt.task.name, "shot": prompt.shot, "index": prompt.index,
                     "texts": prompt.texts, "target": target, "read": read, "correct": right(read, target),
                     "vlm_text": answer[1], "vlm_text_correct": None if answer[1] is None else
                     right(mentioned(answer[1]), target)})
        if out is not None and prompt.index < EXAMPLES:
            folder = out / "images" / prompt.task.name
            folder.mkdir(parents=True, exist_ok=True)
            PIL.Image.fromarray(image).save(folder / f"{prompt.index}_{method}.png")
    return rows


def run(shot: int, cases: int, seed: int, out: str | Path, reasoner: Reasoner, decoder: Decoder, judge: Judge,
        methods: Sequence[str] = METHODS, task_ids: Sequence[int] | None = None, progress: bool = True) -> dict:
    """Judge every (episode, method) of the shot not yet in `out/cases.jsonl`; write and return the summary."""
    from tqdm.auto import tqdm

    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; known: {', '.join(METHODS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "cases.jsonl"
    done = {(r["method"], r["task"], r["index"]) for r in read_jsonl(log, repair=True) if r["shot"] == shot}
    ids = list(task_ids or world_tasks.TABLE.order)
    for task_id in ids:
        for prompt in tqdm(world_tasks.episodes(task_id, shot, cases, seed), disable=not progress,
                           desc=world_tasks.TABLE.tasks[task_id].name):
            todo = [m for m in methods if (m, prompt.task.name, prompt.index) not in done]
            if todo:
                append_rows(log, run_episode(prompt, todo, reasoner, decoder, judge, seed, out))
    return summarize(out, shot, cases, methods, [world_tasks.TABLE.tasks[t].name for t in ids], seed)


def summarize(out: Path, shot: int, cases: int, methods: Sequence[str], task_names: Sequence[str],
              seed: int = 0) -> dict:
    rows = [r for r in read_jsonl(out / "cases.jsonl") if r["shot"] == shot and r["index"] < cases
            and r["task"] in task_names and r["method"] in methods]
    summary = {m: _accuracy([r["correct"] for r in rows if r["method"] == m], seed) for m in methods}
    answers = {(r["task"], r["index"]): r["vlm_text_correct"] for r in rows if r["vlm_text_correct"] is not None}
    details = {"shot": shot, "cases_per_task": cases, "seed": seed,
               "per_task": {m: {t: _accuracy([r["correct"] for r in rows if r["method"] == m and r["task"] == t],
                                             seed)["accuracy"] for t in task_names} for m in methods},
               "vlm_text_accuracy": _accuracy(list(answers.values()), seed) if answers else None}
    write_atomically(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    write_atomically(out / "details.json", json.dumps(details, indent=1) + "\n")
    return summary


def _accuracy(values: Sequence[bool], seed: int) -> dict:
    scores = [float(v) for v in values]
    mean = float(np.mean(scores)) if scores else float("nan")
    return {"accuracy": mean, "ci95": list(bootstrap_ci(scores, seed))}
