"""A local VLM through transformers: AutoProcessor + AutoModelForImageTextToText and the model's chat template.

This is the paper's training-caption setting (LLaMA-3.2-11B-Vision-Instruct) and the offline option for
narration (Qwen2.5-VL-7B-Instruct, ...). Conversations are batched with left padding, so captioning a clip's
frames is one `generate` call per batch. Structured output is not enforced locally; the parser's repairs and the
narrator's retries do that job.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..images import fit
from .base import Conversation, fold_system, translate_parts


class TransformersBackend:
    """Args:
    model: a model id or folder for `from_pretrained`, or an already built model (then pass `processor`).
    processor: the matching processor when `model` is an object.
    device: 'auto' (CUDA when available), 'cpu', 'cuda', ...; dtype: 'auto' (bfloat16 on CUDA) or a torch dtype name.
    max_new_tokens: answer budget; an 81-frame script needs several thousand tokens.
    batch_size: conversations per `generate` call in `chat_batch`.
    system_in_user: fold the system message into the first user turn, for chat templates without a system role.
    generation: extra `generate` arguments (greedy decoding by default, so answers are reproducible and cacheable).
    max_image_side: the longest image side the processor gets; larger images are downscaled first (None: never).
        Processors shrink anyway (LLaMA-3.2-Vision to 560-pixel tiles), but slowly from 8000 pixels, and Qwen2-VL
        keeps up to 12.8 MP: thousands of image tokens for detail no narration needs.
    """

    def __init__(
        self,
        model: Any,
        processor: Any = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_new_tokens: int = 4096,
        batch_size: int = 8,
        system_in_user: bool = False,
        generation: dict[str, Any] | None = None,
        max_image_side: int | None = 2048,
    ):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if isinstance(model, str):
            name = model
            if dtype == "auto":
                dtype = "bfloat16" if device.startswith("cuda") else "float32"
            try:
                processor = processor or AutoProcessor.from_pretrained(name)
                model = AutoModelForImageTextToText.from_pretrained(name, dtype=getattr(torch, dtype))
            except (OSError, ValueError) as err:
                raise ValueError(f"cannot load a vision-language model from {name!r}: {err}") from err
        else:
            if processor is None:
                raise ValueError("pass the processor along with a model object")
            name = getattr(model, "name_or_path", "") or type(model).__name__
        self.model = model.to(device).eval()
        self.processor = processor
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"  # decoder-only generation continues from the right edge
        self.device, self.name = device, name
        self.max_new_tokens, self.batch_size, self.system_in_user = max_new_tokens, batch_size, system_in_user
        self.generation = {"do_sample": False, **(generation or {})}
        self.max_image_side = max_image_side
        extras = ",".join(f"{k}={self.generation[k]}" for k in sorted(self.generation))
        self.cache_id = f"transformers:{name}[max_new_tokens={max_new_tokens},{extras}]"
        # transformers >= 5 wants processor options in `processor_kwargs`; 4.x takes them as keywords.
        self._kwargs_style = "processor_kwargs" in inspect.signature(processor.apply_chat_template).parameters

    def __repr__(self) -> str:
        return f"TransformersBackend({self.name!r}, device={self.device!r})"

    def _hf(self, conversation: Conversation) -> list[dict[str, Any]]:
        if self.system_in_user:
            conversation = fold_system(conversation)
        out = []
        for message in conversation:
            parts = translate_parts(message, lambda image: {"type": "image", "image": fit(image, self.max_image_side)})
            out.append({"role": message["role"], "content": parts})
        return out

    def _generate(self, conversations: list[Conversation]) -> list[str]:
        import torch

        options = {"padding": True}
        extra = {"processor_kwargs": options} if self._kwargs_style else options
        inputs = self.processor.apply_chat_template(
            [self._hf(c) for c in conversations], add_generation_prompt=True, tokenize=True, return_dict=True,
            return_tensors="pt", **extra,
        ).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, **self.generation)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)

    def chat(self, conversation: Conversation, *, json_schema: dict[str, Any] | None = None) -> str:
        return self._generate([conversation])[0]

    def chat_batch(self, conversations: list[Conversation], *, json_schema: dict[str, Any] | None = None) -> list[str]:
        answers: list[str] = []
        for start in range(0, len(conversations), self.batch_size):
            answers += self._generate(conversations[start : start + self.batch_size])
        return answers


def from_spec(target: str, **options) -> TransformersBackend:
    """`transformers:PATH_OR_HUB_ID`."""
    if not target:
        raise ValueError("the transformers backend needs a model folder or hub id, e.g. 'transformers:/models/qwen'")
    return TransformersBackend(target, **options)
