"""The mini VLM: a toy-size transformers `Qwen2VLForConditionalGeneration`, its processor, and its training.

Qwen2-VL is the paper's VLM and its classes take a locally built tokenizer, so the mini VLM is the real class
at toy size, not a custom model. Its tokenizer is byte-level BPE whose merges are learnt from the world's own
texts (captions, questions, episode words, the paper's describe prompts), so a world word is one or two
tokens and an answer is a handful of generated tokens, as in a real VLM. Images are 64x64 stills seen at
their own size in 8-px patches (an 8x8 grid, merged 2x2 into 16 image tokens).

It is trained on SynthWorld *training* scenes only (objects in `TRAIN_OBJECT_BANDS`; the bench's episodes
are held-out scenes), on three kinds of samples drawn per step:

    captioning   a still + one of the paper's 16 describe prompts -> its full caption
    questions    a still + "which room is it?" (agent, object, room, state) -> one word
    episodes     SynthWorld-CoBSAT episodes (1, 2 or 4 shots, every task) + "what comes next?" -> the
                 description of the next image as far as the episode tells: the query's item, and whatever all
                 the demos share ("a cat in the garden"; `answer_attributes`)

So its in-context reasoning is *trained*: what the ThinkDiff demonstration tests is the aligner, which only
ever sees captioning features and must still carry these answers into the decoder. The processor has no
video processor (transformers' need torchvision, absent on our CPU machines), which
`ProcessorMixin.save_pretrained` cannot write; the tokenizer and the image processor are saved side by side
and the processor is rebuilt from them.

    python -m reasondiff.mini.thinkdiff.vlm OUT --steps 4000     # resumes from OUT/checkpoint
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import typer

from ...thinkdiff.cobsat import build_prompts
from ...thinkdiff.features import DESCRIBE_PROMPTS, chat_messages
from .checkpoint import resume_state, run_steps
from .stills import ATTRIBUTES, caption, random_still
from .tasks import PERMUTATION_SIZE, SHOTS, TABLE, task_attributes, target

INSTRUCTION = "what comes next?"
QUESTIONS = {"agent": "who is in the picture?", "object": "what object is there?", "room": "which room is it?",
             "state": "is the object intact or changed?"}
MIX = {"caption": 0.3, "question": 0.2, "episode": 0.5}  # shares of a training batch
IMAGE_SIZE, PATCH = 64, 8


# ---------------------------------------------------------------- processor and model
def world_corpus() -> list[str]:
    """Every text the mini VLM reads or writes, once: what its tokenizer's merges are learnt from."""
    from itertools import product

    from .stills import SPACES

    texts = [*DESCRIBE_PROMPTS, INSTRUCTION, *QUESTIONS.values()]
    for values in product(*(SPACES[k] + (None,) for k in ATTRIBUTES)):
        texts.append(caption(dict(zip(ATTRIBUTES, values, strict=True))))
    texts += [f"{v}: " for space in SPACES.values() for v in space]
    return [t for t in texts if t]


@lru_cache(maxsize=2)
def _world_bpe(vocab_size: int) -> str:
    """Byte-level BPE learnt on `world_corpus` (Qwen's special tokens first), as JSON: deterministic, built once."""
    from tokenizers import Tokenizer, decoders, models, trainers
    from tokenizers.pre_tokenizers import ByteLevel

    from ...thinkdiff.tiny import QWEN_SPECIAL

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=ByteLevel.alphabet(), show_progress=False,
                                  special_tokens=QWEN_SPECIAL)
    backend.train_from_iterator(world_corpus(), trainer)
    return backend.to_str()


def processor(vocab_size: int = 600):
    """The mini VLM's processor: world BPE (+ Qwen's special tokens and chat layout), 64x64 images in 8-px patches."""
    from tokenizers import Tokenizer
    from transformers import Qwen2TokenizerFast, Qwen2VLImageProcessorPil

    from ...thinkdiff.tiny import QWEN_CHAT_TEMPLATE, _OfflineQwen2VLProcessor

    backend = Tokenizer.from_str(_world_bpe(vocab_size))
    tokenizer = Qwen2TokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   padding_side="right")
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    images = Qwen2VLImageProcessorPil(min_pixels=IMAGE_SIZE ** 2, max_pixels=IMAGE_SIZE ** 2, patch_size=PATCH,
                                      merge_size=2, temporal_patch_size=2)
    return _OfflineQwen2VLProcessor(image_processor=images, tokenizer=tokenizer, chat_template=QWEN_CHAT_TEMPLATE)


def build(proc, width: int = 128, layers: int = 4, seed: int = 0):
    """A fresh Qwen2-VL: `layers` text blocks of `width`, a 2-block vision tower in 8-px patches."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    from ...thinkdiff.tiny import QWEN_SPECIAL

    tok = proc.tokenizer
    ids = {s: tok.convert_tokens_to_ids(s) for s in QWEN_SPECIAL}
    half = width // 4 // 2  # rotary pairs per head, split over (time, height, width) as Qwen's 16/24/24 of 64
    section = [max(1, half // 4), (half - max(1, half // 4)) // 2]
    section.append(half - sum(section))
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=width, intermediate_size=3 * width, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         rope_scaling={"type": "mrope", "mrope_section": section},
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         bos_token_id=ids["<|endoftext|>"], tie_word_embeddings=True),
        vision_config=dict(depth=2, embed_dim=64, hidden_size=width, num_heads=4, mlp_ratio=2, patch_size=PATCH,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    return Qwen2VLForConditionalGeneration(cfg)


def save(model, proc, path: str | Path) -> Path:
    path = Path(path)
    model.save_pretrained(path / "model")  # safetensors
    proc.tokenizer.save_pretrained(path / "tokenizer")
    proc.image_processor.save_pretrained(path / "image_processor")
    return path


def load(path: str | Path):
    """(model, processor) from a folder written by `save`."""
    from transformers import Qwen2TokenizerFast, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil

    from ...thinkdiff.tiny import QWEN_CHAT_TEMPLATE, _OfflineQwen2VLProcessor

    path = Path(path)
    tokenizer = Qwen2TokenizerFast.from_pretrained(path / "tokenizer")
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    images = Qwen2VLImageProcessorPil.from_pretrained(path / "image_processor")
    proc = _OfflineQwen2VLProcessor(image_processor=images, tokenizer=tokenizer, chat_template=QWEN_CHAT_TEMPLATE)
    return Qwen2VLForConditionalGeneration.from_pretrained(path / "model").eval(), proc


def is_folder(path: str | Path) -> bool:
    """Whether `path` is a mini VLM folder (`save`'s layout) rather than a hub-style one."""
    return (Path(path) / "model").is_dir() and (Path(path) / "tokenizer").is_dir()


# ---------------------------------------------------------------- training samples (training scenes only)
def captioning(rng: np.random.Generator) -> tuple[list, str]:
    still = random_still(rng, held_out=False)
    prompt = DESCRIBE_PROMPTS[rng.integers(len(DESCRIBE_PROMPTS))]
    return [PIL.Image.fromarray(still.render(IMAGE_SIZE)), prompt], caption(still.attributes())


def question(rng: np.random.Generator) -> tuple[list, str]:
    still = random_still(rng, held_out=False)
    asked = ATTRIBUTES[rng.integers(len(ATTRIBUTES))]
    return [PIL.Image.fromarray(still.render(IMAGE_SIZE)), QUESTIONS[asked]], still.attributes()[asked]


def episode(rng: np.random.Generator) -> tuple[list, str]:
    """A SynthWorld-CoBSAT episode on training scenes, in the bench's format, answered by the description of the
    next image (`answer_attributes`)."""
    task_id = TABLE.order[rng.integers(len(TABLE.order))]
    shot = SHOTS[rng.integers(len(SHOTS))]
    perm = {"x_list": rng.permutation(PERMUTATION_SIZE).tolist(), "theta_list": rng.permutation(PERMUTATION_SIZE)
            .tolist()}
    seed, demos = int(rng.integers(2**31)), []

    def images(task, x, theta, prompt, demo):
        demos.append(random_still(np.random.default_rng([seed, demo]), task_attributes(task, x, theta),
                                  held_out=False))
        return PIL.Image.fromarray(demos[-1].render(IMAGE_SIZE))

    prompt = build_prompts(None, task_id, shot, [perm], table=TABLE, images=images)[0]
    return prompt.items(INSTRUCTION), caption(answer_attributes(prompt, [d.attributes() for d in demos]))


def answer_attributes(prompt, demos: list[dict[str, str]]) -> dict[str, str]:
    """What the next image shows as far as the episode tells: the query's item in the texts' attribute, and every
    other attribute all demos share. The latent one is shared by construction; with one demo everything is, which
    is the only answer one demo allows (the texts alone do not say which attribute is latent); the attributes
    the demos disagree on are left out. Always holds `target(prompt)`."""
    shared = {k: v for k, v in demos[0].items() if all(d[k] == v for d in demos)}
    return {**shared, prompt.task.x_space: prompt.x_values[-1]}


def sample(rng: np.random.Generator) -> tuple[list, str]:
    kind = rng.choice(list(MIX), p=list(MIX.values()))
    return {"caption": captioning, "question": question, "episode": episode}[kind](rng)


def encode(proc, samples: list[tuple[list, str]]) -> dict[str, torch.Tensor]:
    """A training batch: the chat prompt (as inference builds it) + answer + <|im_end|>; loss on the answer only."""
    prompts, answers, images = [], [], []
    for items, answer in samples:
        messages, pictures = chat_messages(items)
        prompts.append(proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        answers.append(answer + proc.tokenizer.eos_token)
        images += pictures
    full = proc(text=[p + a for p, a in zip(prompts, answers, strict=True)], images=images, padding=True,
                return_tensors="pt")
    prompt_lengths = [len(ids) for ids in proc(text=prompts, images=images)["input_ids"]]
    labels = full["input_ids"].masked_fill(full["attention_mask"] == 0, -100)
    for b, n in enumerate(prompt_lengths):
        labels[b, :n] = -100
    return {**full, "labels": labels}


# ---------------------------------------------------------------- the vision tower's pretraining
def _image_features(model, pixels) -> torch.Tensor:
    """`[B, 256]`: the mean and max over each image's 16 merged tokens (what the language model reads)."""
    tokens = torch.stack(model.model.get_image_features(pixels["pixel_values"], pixels["image_grid_thw"]).pooler_output)
    return torch.cat([tokens.mean(1), tokens.amax(1)], dim=-1)


def pretrain_vision(model, proc, steps: int = 300, batch_size: int = 32, learning_rate: float = 1e-3,
                    seed: int = 0) -> float:
    """Teach the vision tower the four attributes of training stills with linear probes (dropped afterwards), as
    a VLM starts from a pretrained vision encoder. Through the language model alone, small agents and objects
    were still unread after 1 250 steps (only the room was); probes teach them in ~150 steps. Returns the probes'
    accuracy (all four attributes right) on 128 held-out stills."""
    from .stills import SPACES

    torch.manual_seed(seed)
    probes = torch.nn.ModuleDict({k: torch.nn.Linear(4 * model.config.text_config.hidden_size // 2, len(SPACES[k]))
                                  for k in ATTRIBUTES})
    optimizer = torch.optim.AdamW([*model.model.visual.parameters(), *probes.parameters()], lr=learning_rate)

    def batch(rng, n, held_out=False):
        stills = [random_still(rng, held_out=held_out) for _ in range(n)]
        pixels = proc.image_processor(images=[PIL.Image.fromarray(s.render(IMAGE_SIZE)) for s in stills],
                                      return_tensors="pt")
        return pixels, {k: torch.tensor([SPACES[k].index(s.attributes()[k]) for s in stills]) for k in ATTRIBUTES}

    for step in range(steps):
        pixels, labels = batch(np.random.default_rng([seed, 10**6 + step]), batch_size)
        z = _image_features(model, pixels)
        loss = sum(torch.nn.functional.cross_entropy(probes[k](z), labels[k]) for k in ATTRIBUTES)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        pixels, labels = batch(np.random.default_rng([seed, 99]), 128, held_out=True)
        z = _image_features(model, pixels)
        right = torch.stack([probes[k](z).argmax(-1) == labels[k] for k in ATTRIBUTES]).all(0)
    return float(right.float().mean())


# ---------------------------------------------------------------- training (exact resume) and evaluation
def rate_at(step: int, steps: int, learning_rate: float, warmup: int = 100) -> float:
    """Linear warm-up to `learning_rate`, then cosine to a tenth of it: a pure function of the step, so a resumed
    run sets the same rate."""
    if step < warmup:
        return learning_rate * (step + 1) / warmup
    progress = min((step - warmup) / max(steps - warmup, 1), 1.0)
    return learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _resume(out: Path, proc, seed: int, learning_rate: float, vision_steps: int):
    from transformers import Qwen2VLForConditionalGeneration

    ckpt = out / "checkpoint"
    model = Qwen2VLForConditionalGeneration.from_pretrained(ckpt / "model") if ckpt.is_dir() else build(proc,
                                                                                                      seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    if not ckpt.is_dir():
        probe = pretrain_vision(model, proc, vision_steps, seed=seed) if vision_steps else None
        (out / "vision.json").write_text(json.dumps({"steps": vision_steps, "probe_accuracy": probe}) + "\n")
        return model, optimizer, 0, []
    return (model, optimizer, *resume_state(out, optimizer))


def train(out: str | Path, steps: int = 4000, batch_size: int = 16, learning_rate: float = 1e-3, seed: int = 0,
          checkpoint_every: int = 250, eval_cases: int = 25, vision_steps: int = 300, log=print) -> dict:
    """Train (or resume) the mini VLM; writes OUT/vlm (`save`'s layout) and OUT/result.json (its accuracies)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    proc = processor()
    model, optimizer, step, losses = _resume(out, proc, seed, learning_rate, vision_steps)
    model.train()

    def loss_at(step: int) -> torch.Tensor:
        rng = np.random.default_rng([seed, step])
        for group in optimizer.param_groups:
            group["lr"] = rate_at(step, steps, learning_rate)
        return model(**encode(proc, [sample(rng) for _ in range(batch_size)])).loss

    step = run_steps(model, optimizer, loss_at, step, steps, losses, out, checkpoint_every, log, max_grad_norm=1.0)
    model.eval()
    save(model, proc, out / "vlm")
    result = {"steps": step, "final_loss": float(np.mean(losses[-50:])),
              "vision_probe_accuracy": json.loads((out / "vision.json").read_text())["probe_accuracy"],
              **(evaluate(model, proc, eval_cases) if eval_cases else {})}
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


@torch.no_grad()
def answer(model, proc, items: list, max_new_tokens: int = 24) -> str:
    """The VLM's greedy answer, read as ThinkDiff reads it (`lvlm_features`)."""
    from ...thinkdiff.features import lvlm_features

    return lvlm_features(model, proc, items, max_new_tokens).text


def evaluate(model, proc, cases: int = 25, seed: int = 1) -> dict:
    """The VLM's own accuracy on held-out scenes: captions written exactly, and the bench's episodes
    (`cases` per task, 1/2/4 shots) answered with both task attributes right."""
    from .bench import mentioned, right
    from .tasks import episodes

    rng = np.random.default_rng([seed, 7])
    stills = [random_still(rng) for _ in range(4 * cases)]
    said = [answer(model, proc, [PIL.Image.fromarray(s.render(IMAGE_SIZE)), DESCRIBE_PROMPTS[0]]) for s in stills]
    result = {"caption_exact": float(np.mean([a == caption(s.attributes()) for a, s in zip(said, stills,
                                                                                            strict=True)]))}
    for shot in SHOTS:
        hits = [right(mentioned(answer(model, proc, p.items(INSTRUCTION))), target(p))
                for t in TABLE.order for p in episodes(t, shot, cases, seed)]
        result[f"episodes_{shot}shot"] = float(np.mean(hits))
    return result


def main(out: Path, config: Path = typer.Option(None, help="YAML of train()'s settings "
                                                       "(configs/thinkdiff_mini_vlm.yaml)."),
         steps: int = None, batch_size: int = None, learning_rate: float = None, seed: int = None,
         eval_cases: int = typer.Option(None, help="Bench episodes per task and shot to score (0: none)."),
         lr: float = typer.Option(None, "--lr", hidden=True)) -> None:  # lr: --learning-rate's old name
    """Train (or resume) the mini VLM into OUT/vlm and score it on held-out scenes (OUT/result.json)."""
    from .config import train_from_command_line

    train_from_command_line(train, out, config, steps=steps, batch_size=batch_size,
                            learning_rate=learning_rate, lr=lr, seed=seed, eval_cases=eval_cases)


if __name__ == "__main__":
    typer.run(main)
