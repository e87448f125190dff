"""CoBSAT evaluation of in-context reasoning generation (paper §4.2, Tables 1-2), over any task table.

CoBSAT (Zeng et al., 2024) shows `shot` (text, image) pairs that share a latent attribute theta,
then a last text; the model must generate the next image: the right object *and* the right detail.
This module reproduces CoBSAT's own data protocol (its current `configs.py`, `load_dataset.py`,
`helper.py`):

- layout: `datasets/{detail_category}_{object}/{detail}_{object}.jpg`, e.g. `color_car/red_car.jpg`,
  `action_dog/swim_dog.jpg`;
- the permutation file `load_datasets/prompts_list_default.json` (older clones: `prompts_list.json`):
  one `{"x_list": [...], "theta_list": [...]}` of indices per prompt; demo i shows x_list[x[i]], theta
  is theta_list[theta[shot + 1]] (sic, CoBSAT's index);
- texts are "{word(x)}: ", where CoBSAT's `item2word` rewrites two items ("park" -> "amusement park",
  "3d" -> "wireframe": the texts of Background-I and Style-I); images are those of (x_i, theta); the
  query is the (shot+1)-th text.

A `TaskTable` holds the item lists, the tasks and how items read in words: `COBSAT` is CoBSAT's, and
other in-context benchmarks in the same format (SynthWorld-CoBSAT, `reasondiff.mini.thinkdiff.tasks`)
bring their own table and their own images (`images=`: a function of (task, x, theta) instead of
files under a root).

Judging follows CoBSAT's VLM protocol: two multiple-choice questions on the generated image, one
for the object and one for the detail, "Answer the number only"; a sample is correct only if both
answers match. Any object with `answer(images, question) -> str` can judge (a local VLM, a
chat-completions server via `OpenAIJudge`, or a script in tests).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import PIL.Image


@dataclass(frozen=True)
class Task:
    id: int
    name: str  # the column name in the paper's Tables 1-3
    detail: str  # detail category: color, background, style, action, texture
    object: str  # object category: object or animal
    x_space: str  # what the texts name
    theta_space: str  # the latent attribute shared by the demos
    x_list: tuple[str, ...] = ()  # the items of x_space, in the table's order
    theta_list: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskTable:
    """An in-context benchmark in CoBSAT's format: item lists, tasks, column order, how items read in words."""

    items: Mapping[str, Sequence[str]]
    tasks: Mapping[int, Task]
    order: Sequence[int]
    item2word: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_pairs(cls, items: Mapping[str, Sequence[str]], pairs: Sequence[tuple[str, str, str]],
                   item2word: Mapping[str, str] | None = None) -> TaskTable:
        """Tasks from (name, detail category, object category) pairs, two per pair as in CoBSAT: "-I" texts name
        the detail and the object is latent, "-II" texts name the object and the detail is latent. Ids run 1, 2, ...
        in pair order; the column order is every "-I" task, then every "-II" task (Table 1's layout)."""
        tasks = {}
        for k, (name, detail, obj) in enumerate(pairs):
            for i, (x, theta, suffix) in enumerate(((detail, obj, "I"), (obj, detail, "II"))):
                task_id = 2 * k + 1 + i
                tasks[task_id] = Task(task_id, f"{name}-{suffix}", detail, obj, x, theta, tuple(items[x]),
                                      tuple(items[theta]))
        order = [t for t in tasks if t % 2 == 1] + [t for t in tasks if t % 2 == 0]
        return cls(items, tasks, order, dict(item2word or {}))

    def word(self, item: str) -> str:
        return self.item2word.get(item, item)


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
COBSAT = TaskTable.from_pairs(ITEMS, [("Color", "color", "object"), ("Background", "background", "animal"),
                                      ("Style", "style", "object"), ("Action", "action", "animal"),
                                      ("Texture", "texture", "object")], ITEM2WORD)
TASKS: dict[int, Task] = dict(COBSAT.tasks)
TABLE_ORDER = list(COBSAT.order)  # Color-I ... Texture-I, Color-II ... Texture-II
PERMUTATION_FILES = ("prompts_list_default.json", "prompts_list.json")  # CoBSAT's current name, then the old one


def dataset_dir(root: str | Path) -> Path:
    """CoBSAT's image folder: `root/datasets` if present (a clone of the repo), else `root` itself."""
    root = Path(root)
    return root / "datasets" if (root / "datasets").is_dir() else root


def default_permutations(root: str | Path) -> Path:
    """ROOT/load_datasets/prompts_list_default.json, or the older prompts_list.json of clones made before
    CoBSAT renamed it; the current name when neither exists (so the error names the file to fetch)."""
    folder = Path(root) / "load_datasets"
    return next((folder / f for f in PERMUTATION_FILES if (folder / f).is_file()), folder / PERMUTATION_FILES[0])


def object_and_detail(task: Task, x: str, theta: str) -> tuple[str, str]:
    return (x, theta) if task.x_space == task.object else (theta, x)


def image_path(root: str | Path, task: Task, x: str, theta: str) -> Path:
    """CoBSAT helper.find_image: the picture of (x, theta) for `task` (file names use items, not words)."""
    obj, detail = object_and_detail(task, x, theta)
    return dataset_dir(root) / f"{task.detail}_{obj}" / f"{detail}_{obj}.jpg"


ImageSource = Callable[["Task", str, str, int, int], "Path | PIL.Image.Image"]  # (task, x, theta, prompt, demo)


@dataclass
class CoBSATPrompt:
    task: Task
    index: int
    shot: int
    texts: list[str]  # shot + 1 texts, "{word(x)}: "
    images: list[Path | PIL.Image.Image]  # shot images (files, or pictures rendered by the table's source)
    x_values: list[str]  # shot + 1 x items
    theta: str
    words: list[str] = field(default_factory=list)  # how the x items read (CoBSAT's item2word)

    @property
    def image_paths(self) -> list[Path]:
        return [p for p in self.images if isinstance(p, Path)]

    @property
    def target_object(self) -> str:
        return object_and_detail(self.task, self.x_values[-1], self.theta)[0]

    @property
    def target_detail(self) -> str:
        return object_and_detail(self.task, self.x_values[-1], self.theta)[1]

    @property
    def name(self) -> str:  # CoBSAT's save_path (it joins the rewritten words)
        return f"{self.index}_{self.theta}_{'_'.join(self.words or self.x_values)}"

    def items(self, instruction: str | None = None) -> list[str | PIL.Image.Image]:
        """The interleaved input: text_0, image_0, ..., text_{shot-1}, image_{shot-1}, text_shot[, instruction]."""
        out: list[str | PIL.Image.Image] = []
        for i, text in enumerate(self.texts):
            out.append(text)
            if i < self.shot:
                out.append(_open(self.images[i]))
        if instruction:
            out.append(instruction)
        return out


def _open(image: Path | PIL.Image.Image) -> PIL.Image.Image:
    if isinstance(image, PIL.Image.Image):
        return image.convert("RGB")
    with PIL.Image.open(image) as img:
        return img.convert("RGB")


def load_permutations(path: str | Path) -> list[dict]:
    """CoBSAT's `load_datasets/prompts_list_default.json`: a list of {"x_list": [idx...], "theta_list": [idx...]}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CoBSAT permutation file not found: {path} (CoBSAT ships "
                                f"load_datasets/{PERMUTATION_FILES[0]})")
    data = json.loads(path.read_text())
    if not isinstance(data, list) or not all("x_list" in d and "theta_list" in d for d in data):
        raise ValueError(f"{path} is not a CoBSAT permutation file (a list of {{x_list, theta_list}})")
    return data


def build_prompts(root: str | Path | None, task_id: int, shot: int, permutations: Sequence[dict],
                  num_prompts: int | None = None, check_images: bool = True, table: TaskTable = COBSAT,
                  images: ImageSource | None = None) -> list[CoBSATPrompt]:
    """CoBSAT load_dataset/load_inputs for one task and shot (2 or 4 in the paper), in the file's order.

    Indices are taken modulo the item list's length, which changes nothing for CoBSAT (10 items everywhere)
    and lets tables with shorter lists share one permutation file. `images(task, x, theta, prompt, demo)`
    replaces CoBSAT's files under `root`.
    """
    task = table.tasks[task_id]
    prompts = []
    for i, perm in enumerate(permutations[:num_prompts]):
        x_idx, theta_idx = perm["x_list"], perm["theta_list"]
        if len(x_idx) < shot + 1 or len(theta_idx) < shot + 2:
            raise ValueError(f"permutation {i} is too short for {shot}-shot prompts")
        theta = task.theta_list[theta_idx[shot + 1] % len(task.theta_list)]
        xs = [task.x_list[x_idx[d] % len(task.x_list)] for d in range(shot + 1)]
        if images is None:
            pictures = [image_path(root, task, xs[d], theta) for d in range(shot)]
            missing = [str(p) for p in pictures if check_images and not p.is_file()]
            if missing:
                raise FileNotFoundError(f"CoBSAT images missing: {missing[:3]}")
        else:
            pictures = [images(task, xs[d], theta, i, d) for d in range(shot)]
        words = [table.word(x) for x in xs]
        prompts.append(CoBSATPrompt(task, i, shot, [f"{w}: " for w in words], pictures, xs, theta, words))
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


def format_table(results: Mapping[int, TaskResult | float], label: str = "ThinkDiff",
                 table: TaskTable = COBSAT) -> str:
    """The paper's table layout: one row, the table's task columns in its order (Table 1's), plus the mean.

    `results` maps task ids to `TaskResult`s or to accuracies."""
    ids = [t for t in table.order if t in results]
    names = [table.tasks[t].name for t in ids] + ["Mean"]
    accs = [r.accuracy if isinstance(r, TaskResult) else float(r) for r in (results[t] for t in ids)]
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
