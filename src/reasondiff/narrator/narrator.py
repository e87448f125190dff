"""VisionNarrator (paper §3.2): a frozen MLLM reads an unpaired prompt and image and writes the video's script.

Three roles, one backend: `narrate` (the method), `rewrite` (the naive "rewrite the prompt" baseline for plain
Wan) and `caption` (per-frame captions for training data, §3.4). An answer that cannot be repaired is sent back
to the model with the validation error, a bounded number of times; every usable answer is cached on disk.
A backend that plays the roles itself (`NarratingBackend`, e.g. the SynthWorld rules) is called directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import PIL.Image

from . import prompts
from .backends.base import ChatBackend, Conversation, NarratingBackend
from .cache import AnswerCache, cache_key
from .errors import NarrationError
from .images import fingerprint, to_pil
from .parsing import parse_narration, parse_text
from .registry import create_backend
from .schema import Narration


MAX_FRAMES = 1025  # a script longer than this is tens of thousands of answer tokens: no narrator writes it well
MAX_PROMPT_CHARS = 2000
MAX_ANSWER_CHARS = 1_000_000  # 1025 frames of 200-character descriptions are ~200 000


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


class VisionNarrator:
    """Turn an unpaired (image, prompt) into a frame-wise `Narration` with an MLLM.

    Args:
        backend: a spec string (`openai:gpt-4o`, `openai:MODEL@http://localhost:8000/v1`, `transformers:PATH`,
            or any name added with `register_backend`), or a backend object; default `$REASONDIFF_NARRATOR` or
            `openai:gpt-4o`.
        cache_dir: where answers are cached; default `$REASONDIFF_CACHE/narrator` or `~/.cache/reasondiff/narrator`.
        use_cache: False to always ask the model.
        max_attempts: answers asked for per call before giving up with `NarrationError` (the first plus retries
            that carry the previous validation error).
        num_examples: in-context examples shown before the real request (0 to 2).
        **backend_options: passed to the backend factory when `backend` is a spec (timeout, max_retries, ...).

    Example:
        >>> narrator = VisionNarrator("openai:gpt-4o")
        >>> script = narrator.narrate("vase.png", "A cat plays in the room", num_frames=81)
        >>> script.position, script.segments()[0]
    """

    def __init__(
        self,
        backend: str | ChatBackend | None = None,
        *,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        max_attempts: int = 3,
        num_examples: int = 2,
        **backend_options: Any,
    ):
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if not 0 <= num_examples <= len(prompts.EXAMPLES):
            raise ValueError(f"num_examples must be between 0 and {len(prompts.EXAMPLES)}, got {num_examples}")
        if backend is None or isinstance(backend, str):
            backend = create_backend(backend, **backend_options)
        elif backend_options:
            raise TypeError(f"backend options {sorted(backend_options)} only apply to a spec string")
        self.backend = backend
        self.cache = AnswerCache(cache_dir) if use_cache else None
        self.max_attempts, self.num_examples = max_attempts, num_examples

    def __repr__(self) -> str:
        return f"VisionNarrator({self.backend!r})"

    # ---------------------------------------------------------------------------------------------- conversations

    def narration_conversation(self, image: PIL.Image.Image, prompt: str, num_frames: int) -> Conversation:
        conversation: Conversation = [{"role": "system", "content": [_text(prompts.narrate_instruction(num_frames))]}]
        for example in prompts.EXAMPLES[: self.num_examples]:
            request = prompts.EXAMPLE_REQUEST.format(
                prompt=example["prompt"], f=prompts.example_frames(example), image=example["image"]
            )
            conversation += [
                {"role": "user", "content": [_text(request)]},
                {"role": "assistant", "content": [_text(prompts.example_answer(example))]},
            ]
        request = prompts.NARRATE_REQUEST.format(prompt=prompt, f=num_frames)
        conversation.append({"role": "user", "content": [{"type": "image", "image": image}, _text(request)]})
        return conversation

    # -------------------------------------------------------------------------------------------------- the roles

    def narrate(self, image, prompt: str, num_frames: int) -> Narration:
        """Where `image` sits in a `num_frames`-frame video of `prompt`'s story, and what each frame shows.

        Raises NarrationError (with the raw answer) when no attempt gives a usable script, and
        NarratorBackendError when the model cannot be reached.
        """
        image = to_pil(image)
        self.check_request(image, prompt, num_frames)
        prompt = prompt.strip()
        key = self._key("narrate", image, prompt=prompt, num_frames=num_frames, examples=self.num_examples)
        cached = self._cached(key)
        if cached is not None:
            return Narration.model_validate(cached)

        narration, attempts, errors = self._script(image, prompt, num_frames)
        metadata = {
            **narration.metadata,
            "narrator": self.backend.cache_id,
            "instruction_version": prompts.INSTRUCTION_VERSION,
            "prompt": prompt,
            "attempts": attempts,
        }
        if errors:
            metadata["retried_after"] = errors
        narration = narration.model_copy(update={"metadata": metadata})
        self._store(key, narration.model_dump(mode="json"), kind="narrate", prompt=prompt, num_frames=num_frames)
        return narration

    def _script(self, image: PIL.Image.Image, prompt: str, num_frames: int) -> tuple[Narration, int, list[str]]:
        """The script, the attempts it took and the problems of the failed ones."""
        if not isinstance(self.backend, NarratingBackend):
            return self._ask_script(image, prompt, num_frames)
        narration = self.backend.narrate(image, prompt, num_frames)
        if narration.num_frames != num_frames:
            raise NarrationError(f"{self.backend.cache_id} scripted {narration.num_frames} frames, not {num_frames}")
        return narration, 1, []

    def _ask_script(self, image: PIL.Image.Image, prompt: str, num_frames: int) -> tuple[Narration, int, list[str]]:
        """Ask the model, parse leniently, and send an unusable answer back with the reason, a bounded number of times."""
        conversation = self.narration_conversation(image, prompt, num_frames)
        answers: list[str] = []
        errors: list[str] = []
        for attempt in range(1, self.max_attempts + 1):
            raw = self.backend.chat(conversation, json_schema=prompts.narration_schema())
            answers.append(raw[:MAX_ANSWER_CHARS])
            try:
                if len(raw) > MAX_ANSWER_CHARS:  # a runaway answer: not parsed, asked again like any unusable one
                    raise NarrationError(f"the answer has {len(raw)} characters; a script is at most "
                                         f"{MAX_ANSWER_CHARS}", raw[:2000])
                return parse_narration(raw, num_frames), attempt, errors
            except NarrationError as err:
                errors.append(err.reason)
                conversation = conversation + [
                    {"role": "assistant", "content": [_text(answers[-1])]},
                    {"role": "user", "content": [_text(prompts.retry_feedback(err.reason, num_frames))]},
                ]
        raise NarrationError(
            f"{self.backend.cache_id} gave no usable script in {self.max_attempts} attempt(s); last problem: {errors[-1]}",
            answers[-1],
            answers,
        )

    def check_request(self, image, prompt: str, num_frames: int) -> None:
        """Raise ValueError for a request this narrator will refuse, before anything costly runs (callers check
        before loading a video model; `narrate` checks again). Backends may add their own `check_request`."""
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or not 1 <= num_frames <= MAX_FRAMES:
            raise ValueError(f"the narrator scripts 1 to {MAX_FRAMES} frames, got {num_frames!r}")
        self._check_prompt(prompt)
        backend_check = getattr(self.backend, "check_request", None)
        if backend_check is not None:
            backend_check(to_pil(image), prompt.strip(), num_frames)

    def rewrite(self, image, prompt: str) -> str:
        """One detailed prompt for plain Wan2.1 I2V (the paper's "rewrite prompt" baseline, like Wan's prompt
        extension): the story from this image towards the text, in one paragraph."""
        prompt = self._check_prompt(prompt)
        image = to_pil(image)
        key = self._key("rewrite", image, prompt=prompt)
        cached = self._cached(key)
        if cached is not None:
            return cached
        if isinstance(self.backend, NarratingBackend):
            text = self.backend.rewrite(image, prompt)
        else:
            conversation = [
                {"role": "system", "content": [_text(prompts.REWRITE_INSTRUCTION)]},
                {"role": "user", "content": [{"type": "image", "image": image},
                                             _text(prompts.REWRITE_REQUEST.format(prompt=prompt))]},
            ]
            text = self._ask_text(conversation, "rewritten prompt")
        self._store(key, text, kind="rewrite", prompt=prompt)
        return text

    def caption(self, frames: Sequence) -> list[str]:
        """One caption per frame (§3.4 builds training data this way); frames are PIL images, paths or arrays.

        Cached frames cost nothing; the rest go to the backend in one batch (a local model batches them).
        """
        images = [self._frame(f) for f in frames]
        keys = [self._key("caption", image) for image in images]
        captions: list[str | None] = [self._cached(k) for k in keys]
        todo = [i for i, c in enumerate(captions) if c is None]
        if isinstance(self.backend, NarratingBackend):
            for i, text in zip(todo, self.backend.caption([images[i] for i in todo]) if todo else []):
                captions[i] = text
                self._store(keys[i], text, kind="caption")
            return captions  # type: ignore[return-value]
        conversations = [
            [{"role": "user", "content": [{"type": "image", "image": images[i]}, _text(prompts.CAPTION_INSTRUCTION)]}]
            for i in todo
        ]
        answers = self.backend.chat_batch(conversations) if conversations else []
        for i, raw in zip(todo, answers):
            try:
                captions[i] = parse_text(raw, "caption")
            except NarrationError:  # one more try alone, then fail naming the frame
                try:
                    captions[i] = parse_text(self.backend.chat(conversations[todo.index(i)]), "caption")
                except NarrationError as err:
                    raise NarrationError(f"frame {i + 1} got no usable caption: {err.reason}", err.raw) from None
            self._store(keys[i], captions[i], kind="caption")
        return captions  # type: ignore[return-value]

    # -------------------------------------------------------------------------------------------------- internals

    def _ask_text(self, conversation: Conversation, what: str) -> str:
        answers = []
        for _ in range(self.max_attempts):
            raw = self.backend.chat(conversation)
            answers.append(raw)
            try:
                return parse_text(raw, what)
            except NarrationError:
                continue
        raise NarrationError(f"{self.backend.cache_id} gave no usable {what} in {self.max_attempts} attempt(s)", answers[-1], answers)

    @staticmethod
    def _check_prompt(prompt: str) -> str:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("the prompt is empty")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"the prompt has {len(prompt)} characters; the narrator takes at most {MAX_PROMPT_CHARS}")
        return prompt.strip()

    @staticmethod
    def _frame(frame) -> PIL.Image.Image:
        if hasattr(frame, "shape") and hasattr(frame, "dtype"):  # numpy [H, W, 3], uint8 or floats in [0, 1]
            import numpy as np

            array = np.asarray(frame)
            if array.dtype != np.uint8:
                array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
            return PIL.Image.fromarray(array).convert("RGB")
        return to_pil(frame)

    def _key(self, kind: str, image: PIL.Image.Image, **fields: Any) -> str:
        return cache_key(
            kind=kind, image=fingerprint(image), backend=self.backend.cache_id,
            instruction_version=prompts.INSTRUCTION_VERSION, **fields,
        )

    def _cached(self, key: str):
        return self.cache.get(key) if self.cache is not None else None

    def _store(self, key: str, value: Any, **about: Any) -> None:
        if self.cache is not None:
            try:
                self.cache.put(key, value, backend=self.backend.cache_id, **about)
            except OSError:  # a read-only or full disk costs the cache, not the answer
                pass
