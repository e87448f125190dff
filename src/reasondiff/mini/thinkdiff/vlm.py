"""Saving and loading the mini VLM: a toy-size transformers `Qwen2VLForConditionalGeneration` and its processor.

Qwen2-VL is the paper's VLM and its classes take a locally built tokenizer (`thinkdiff.tiny.qwen2vl_processor`:
byte-level, Qwen's special tokens and chat layout), so the mini VLM is the real class at toy size, not a
custom model. Its processor has no video processor (transformers' need torchvision, absent on our CPU
machines), which `ProcessorMixin.save_pretrained` cannot write; the tokenizer and the image processor are
saved side by side instead and the processor is rebuilt from them. Training it on SynthWorld (captioning,
attribute questions, in-context episodes answered as an image description) is not written yet (issue #19).
"""

from __future__ import annotations

from pathlib import Path


def save(model, processor, path: str | Path) -> Path:
    path = Path(path)
    model.save_pretrained(path / "model")  # safetensors
    processor.tokenizer.save_pretrained(path / "tokenizer")
    processor.image_processor.save_pretrained(path / "image_processor")
    return path


def load(path: str | Path):
    """(model, processor) from a folder written by `save`."""
    from transformers import Qwen2TokenizerFast, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil

    from ...thinkdiff.tiny import QWEN_CHAT_TEMPLATE, _OfflineQwen2VLProcessor

    path = Path(path)
    tokenizer = Qwen2TokenizerFast.from_pretrained(path / "tokenizer")
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    images = Qwen2VLImageProcessorPil.from_pretrained(path / "image_processor")
    processor = _OfflineQwen2VLProcessor(image_processor=images, tokenizer=tokenizer, chat_template=QWEN_CHAT_TEMPLATE)
    return Qwen2VLForConditionalGeneration.from_pretrained(path / "model").eval(), processor
