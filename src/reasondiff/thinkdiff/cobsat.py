"""CoBSAT evaluation of in-context reasoning generation (paper §4.2, Tables 1-2).

CoBSAT (Zeng et al., 2024) shows `shot` (text, image) pairs that share a latent attribute theta,
then a last text; the model must generate the next image: the right object *and* the right detail.
This module reproduces CoBSAT's own data protocol (its `configs.py`, `load_dataset.py`, `helper.py`):

- layout: `datasets/{detail_category}_{object}/{detail}_{object}.jpg`, e.g. `color_car/red_car.jpg`,
  `action_dog/swim_dog.jpg`;
- the permutation file `prompts_list.json`: one `{"x_list": [...], "theta_list": [...]}` of indices
  per prompt; demo i shows x_list[x[i]], theta is theta_list[theta[shot + 1]] (sic, CoBSAT's index);
- texts are "{x}: "; images are those of (x_i, theta); the query is the (shot+1)-th text.

Judging follows CoBSAT's VLM protocol: two multiple-choice questions on the generated image, one
for the object and one for the detail, "Answer the number only"; a sample is correct only if both
answers match. Any object with `answer(images, question) -> str` can judge (a local VLM, a
chat-completions server via `OpenAIJudge`, or a script in tests).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import PIL.Image

ITEMS = {  # CoBSAT configs.item_dict
    "color": ["yellow", "white", "red", "purple", "pink", "orange", "green", "brown", "blue", "black"],
    "object": ["leaf", "hat", "cup", "chair", "car", "box", "book", "ball", "bag", "apple"],
    "animal": ["zebra", "tiger", "sheep", "pig", "monkey", "lion", "dog", "cow", "cat", "bird"],
    "style": ["watercolor", "sketch", "pixel", "origami", "lego", "icon", "graffiti", "futuristic", "3d", "old"],
    "action": ["swim", "sleep", "sing", "run", "read", "fly", "eat", "drink", "cry", "angry"],
    "background": ["beach", "desert", "glacier", "volcano", "park", "gym", "waterfall", "space", "cave", "seafloor"],
    "texture": ["wood", "wicker", "sequined", "plastic", "paper", "metal", "leather", "lace", "denim", "ceramic"],
}
ITEM2WORD = {"3d": "wireframe", "park": "amusement park"}  # CoBSAT configs.item2word: how items read in words


@dataclass(frozen=True)
class Task:
    id: int
    name: str  # the column name in the paper's Tables 1-3
    detail: str  # detail category: color, background, style, action, texture
    object: str  # object category: object or animal
    x_space: str  # what the texts name
    theta_space: str  # the latent attribute shared by the demos

    @property
    def x_list(self) -> list[str]:
        return ITEMS[self.x_space]

    @property
    def theta_list(self) -> list[str]:
        return ITEMS[self.theta_space]


def _pair(i, name, detail, obj):
    # Task "-I": texts name the detail, the object is latent; "-II": texts name the object, the detail is latent.
    return [Task(i, f"{name}-I", detail, obj, detail, obj), Task(i + 1, f"{name}-II", detail, obj, obj, detail)]


TASKS: dict[int, Task] = {t.id: t for t in (
    *_pair(1, "Color", "color", "object"), *_pair(3, "Background", "background", "animal"),
    *_pair(5, "Style", "style", "object"), *_pair(7, "Action", "action", "animal"),
    *_pair(9, "Texture", "texture", "object"),
)}
TABLE_ORDER = [1, 3, 5, 7, 9, 2, 4, 6, 8, 10]  # Color-I ... Texture-I, Color-II ... Texture-II


def dataset_dir(root: str | Path) -> Path:
    """CoBSAT's image folder: `root/datasets` if present (a clone of the repo), else `root` itself."""
    root = Path(root)
    return root / "datasets" if (root / "datasets").is_dir() else root


def image_path(root: str | Path, task: Task, x: str, theta: str) -> Path:
    """CoBSAT helper.find_image: the picture of (x, theta) for `task`."""
    obj, detail = (x, theta) if task.x_space == task.object else (theta, x)
    return dataset_dir(root) / f"{task.detail}_{obj}" / f"{detail}_{obj}.jpg"


@dataclass
class CoBSATPrompt:
    task: Task
    index: int
    shot: int
    texts: list[str]  # shot + 1 texts, "{x}: "
    image_paths: list[Path]  # shot images
    x_values: list[str]  # shot + 1 x values
    theta: str

    @property
    def target_object(self) -> str:
        return self.x_values[-1] if self.task.x_space == self.task.object else self.theta

    @property
    def target_detail(self) -> str:
        return self.theta if self.task.x_space == self.task.object else self.x_values[-1]

    @property
    def name(self) -> str:  # CoBSAT's save_path
        return f"{self.index}_{self.theta}_{'_'.join(self.x_values)}"

    def items(self, instruction: str | None = None) -> list[str | PIL.Image.Image]:
        """The interleaved input: text_0, image_0, ..., text_{shot-1}, image_{shot-1}, text_shot[, instruction]."""
        out: list[str | PIL.Image.Image] = []
        for i, text in enumerate(self.texts):
            out.append(text)
            if i < self.shot:
                with PIL.Image.open(self.image_paths[i]) as img:
                    out.append(img.convert("RGB"))
        if instruction:
            out.append(instruction)
        return out


def load_permutations(path: str | Path) -> list[dict]:
    """CoBSAT's `load_datasets/prompts_list.json`: a list of {"x_list": [idx...], "theta_list": [idx...]}."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, list) or not all("x_list" in d and "theta_list" in d for d in data):
        raise ValueError(f"{path} is not a CoBSAT permutation file (a list of {{x_list, theta_list}})")
    return data


def build_prompts(root: str | Path, task_id: int, shot: int, permutations: Sequence[dict],
                  num_prompts: int | None = None, check_images: bool = True) -> list[CoBSATPrompt]:
    """CoBSAT load_dataset/load_prompt for one task and shot (2 or 4 in the paper), in the file's order."""
    task = TASKS[task_id]
    prompts = []
    for i, perm in enumerate(permutations[:num_prompts]):
        x_idx, theta_idx = perm["x_list"], perm["theta_list"]
        if len(x_idx) < shot + 1 or len(theta_idx) < shot + 2:
            raise ValueError(f"permutation {i} is too short for {shot}-shot prompts")
        theta = task.theta_list[theta_idx[shot + 1]]
        xs = [task.x_list[x_idx[d]] for d in range(shot + 1)]
        paths = [image_path(root, task, xs[d], theta) for d in range(shot)]
        if check_images:
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise FileNotFoundError(f"CoBSAT images missing: {missing[:3]}")
        prompts.append(CoBSATPrompt(task, i, shot, [f"{x}: " for x in xs], paths, xs, theta))
    return prompts


# ---------------------------------------------------------------- judging
class Judge(Protocol):
    def answer(self, images: list[PIL.Image.Image], question: str) -> str: ...


_DETAIL_QUESTION = {
    "color": "What is the color of the object in this image?",
    "background": "What is the background of this image?",
    "style": "What is the style of this image?",
    "action": "What is the animal doing in this image?",
    "texture": "What is the texture of the object in this image?",
}


def _options(values: list[str]) -> str:
    return " ".join(f"({i})" + ITEM2WORD.get(v, v) for i, v in enumerate(values, 1))


def questions(task: Task) -> tuple[str, str]:
    """(object question, detail question), each with CoBSAT's numbered options."""
    suffix = "Answer the number only."
    q_obj = f"What is the main {task.object} in this image? Answer from the following options: " \
            f"{_options(ITEMS[task.object])}. {suffix}"
    q_det = f"{_DETAIL_QUESTION[task.detail]} Answer from the following options: " \
            f"{_options(ITEMS[task.detail])}. {suffix}"
    return q_obj, q_det


def parse_choice(answer: str) -> int | None:
    """The first number in the judge's answer (a whole number: option 10 is not option 1)."""
    m = re.search(r"\d+", answer)
    return int(m.group(0)) if m else None


@dataclass
class Judgement:
    prompt: str
    object_answer: str
    detail_answer: str
    object_correct: bool
    detail_correct: bool

    @property
    def correct(self) -> bool:
        return self.object_correct and self.detail_correct


def judge_image(judge: Judge, prompt: CoBSATPrompt, image: PIL.Image.Image) -> Judgement:
    task = prompt.task
    q_obj, q_det = questions(task)
    a_obj, a_det = judge.answer([image], q_obj), judge.answer([image], q_det)
    obj_ok = parse_choice(a_obj) == ITEMS[task.object].index(prompt.target_object) + 1
    det_ok = parse_choice(a_det) == ITEMS[task.detail].index(prompt.target_detail) + 1
    return Judgement(prompt.name, a_obj, a_det, obj_ok, det_ok)


@dataclass
class TaskResult:
    task: Task
    shot: int
    judgements: list[Judgement] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return sum(j.correct for j in self.judgements) / max(len(self.judgements), 1)


def evaluate(root: str | Path, permutations: Sequence[dict], generate: Callable[[CoBSATPrompt], PIL.Image.Image],
             judge: Judge, shot: int = 2, task_ids: Sequence[int] = TABLE_ORDER, num_prompts: int | None = None,
             out_dir: str | Path | None = None, progress: bool = True) -> dict[int, TaskResult]:
    """Generate one image per prompt, judge it, and return per-task results (Tables 1-2 are their accuracies).

    With `out_dir`, images go to `out_dir/shot_{shot}/{task}/{name}.png` and judgements to `results.jsonl`.
    """
    from tqdm.auto import tqdm

    results = {}
    for task_id in task_ids:
        result = TaskResult(TASKS[task_id], shot)
        prompts = build_prompts(root, task_id, shot, permutations, num_prompts)
        for prompt in tqdm(prompts, disable=not progress, desc=TASKS[task_id].name):
            image = generate(prompt)
            judgement = judge_image(judge, prompt, image)
            result.judgements.append(judgement)
            if out_dir is not None:
                folder = Path(out_dir) / f"shot_{shot}" / TASKS[task_id].name
                folder.mkdir(parents=True, exist_ok=True)
                image.save(folder / f"{prompt.name}.png")
                with open(Path(out_dir) / f"shot_{shot}" / "results.jsonl", "a") as f:
                    f.write(json.dumps({"task": TASKS[task_id].name, **judgement.__dict__,
                                        "correct": judgement.correct}) + "\n")
        results[task_id] = result
    return results


def format_table(results: dict[int, TaskResult], label: str = "ThinkDiff") -> str:
    """The paper's table layout: one row, ten task columns in Table 1's order, plus the mean."""
    ids = [t for t in TABLE_ORDER if t in results]
    names = [TASKS[t].name for t in ids] + ["Mean"]
    accs = [results[t].accuracy for t in ids]
    values = [f"{a:.3f}" for a in accs] + [f"{sum(accs) / max(len(accs), 1):.3f}"]
    width = max(len(label), 5)
    head = " " * width + " " + " ".join(f"{n:>13}" for n in names)
    return head + "\n" + f"{label:<{width}} " + " ".join(f"{v:>13}" for v in values)


class OpenAIJudge:
    """A judge served by any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, OpenAI, ...)."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, client=None):
        if client is None:
            from openai import OpenAI  # a base dependency of reasondiff

            client = OpenAI(base_url=base_url, api_key=api_key)
        self.client, self.model = client, model

    def answer(self, images: list[PIL.Image.Image], question: str) -> str:
        import base64
        import io

        content = []
        for image in images:
            buf = io.BytesIO()
            image.convert("RGB").save(buf, format="PNG")
            url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
            content.append({"type": "image_url", "image_url": {"url": url}})
        content.append({"type": "text", "text": question})
        reply = self.client.chat.completions.create(model=self.model, temperature=0, max_tokens=16,
                                                    messages=[{"role": "user", "content": content}])
        return reply.choices[0].message.content or ""
