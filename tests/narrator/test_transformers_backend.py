"""The transformers backend end to end on a tiny random LLaMA-3.2-Vision (Mllama) saved to disk and loaded back
through the Auto classes, as `transformers:/path/to/model` does for a real checkpoint. Its answers are noise."""

import pytest
from PIL import Image

from reasondiff.narrator import NarrationError, VisionNarrator
from reasondiff.narrator.backends.transformers_backend import TransformersBackend
from reasondiff.narrator.prompts import narrate_instruction
from reasondiff.narrator.tiny_mllama import vlm


@pytest.fixture(scope="module")
def tiny_vlm_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-vlm")
    model, processor = vlm(seed=0)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def record_generate(backend):
    calls = []
    generate = backend.model.generate

    def recording(**kwargs):
        calls.append(kwargs)
        return generate(**kwargs)

    backend.model.generate = recording
    return calls


def test_noise_gives_a_clear_narration_error_after_the_full_prompt_path(tiny_vlm_dir, tmp_path):
    narrator = VisionNarrator(f"transformers:{tiny_vlm_dir}", cache_dir=tmp_path, max_new_tokens=12, max_attempts=2)
    assert isinstance(narrator.backend, TransformersBackend)
    calls = record_generate(narrator.backend)
    image = Image.new("RGB", (40, 30), (200, 30, 30))
    with pytest.raises(NarrationError) as info:
        narrator.narrate(image, "A cat plays in the room", 9)
    assert "no usable script in 2 attempt(s)" in str(info.value)
    assert len(info.value.answers) == 2 and all(isinstance(a, str) for a in info.value.answers)
    assert info.value.raw == info.value.answers[-1]

    tokenizer = narrator.backend.processor.tokenizer
    first, second = (tokenizer.decode(c["input_ids"][0]) for c in calls)
    # What the model read: the paper's instruction, the in-context examples, the image, then our request.
    assert narrate_instruction(9) in first and "A cat plays in the room" in first
    assert first.count("<|image|>") == 1 and first.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert calls[0]["pixel_values"].shape[:2] == (1, 1)
    # The retry continues the conversation with the model's answer and the validation error.
    assert second.startswith(first[: len(first) - 40]) and "Your answer could not be used: no JSON object" in second
    assert len(calls[1]["input_ids"][0]) > len(calls[0]["input_ids"][0])


def test_batched_generation_matches_one_by_one(tiny_vlm_dir):
    backend = TransformersBackend(str(tiny_vlm_dir), max_new_tokens=8, batch_size=2)
    calls = record_generate(backend)
    images = [Image.new("RGB", (30, 30), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    texts = ["Describe.", "Describe this frame in one long sentence, please.", "What happens?"]
    conversations = [[{"role": "user", "content": [{"type": "image", "image": i}, {"type": "text", "text": t}]}]
                     for i, t in zip(images, texts)]
    batched = backend.chat_batch(conversations)
    assert [len(c["input_ids"]) for c in calls] == [2, 1]  # batches of 2, then the rest
    assert calls[0]["input_ids"][0][0] == backend.processor.tokenizer.pad_token_id  # left padding
    assert batched == [backend.chat(c) for c in conversations]


def test_caption_returns_one_caption_per_frame(tiny_vlm_dir, tmp_path):
    backend = TransformersBackend(str(tiny_vlm_dir), max_new_tokens=8, batch_size=4)
    narrator = VisionNarrator(backend, cache_dir=tmp_path)
    calls = record_generate(backend)
    frames = [Image.new("RGB", (30, 30), (i * 60, 0, 0)) for i in range(3)]
    captions = narrator.caption(frames)  # noise, but (seed 0) never empty noise
    assert len(captions) == 3 and all(c.strip() for c in captions)
    assert len(calls[0]["input_ids"]) == 3  # one batch
    assert narrator.caption(frames) == captions and len(calls) == 1  # cached


def test_loading_a_folder_without_a_model_names_it(tmp_path):
    with pytest.raises(ValueError, match="cannot load a vision-language model from"):
        VisionNarrator(f"transformers:{tmp_path}", cache_dir=tmp_path)


def test_large_images_reach_the_processor_downscaled(tiny_vlm_dir):
    """An 8000-pixel picture is shrunk before the processor (which would otherwise resize it slowly, or, like
    Qwen2-VL's, keep millions of pixels as image tokens); pictures up to 2048 pixels go as they are."""
    backend = TransformersBackend(str(tiny_vlm_dir), max_new_tokens=2)
    big, normal = Image.new("RGB", (8000, 2000), (10, 200, 30)), Image.new("RGB", (1920, 1080), (10, 200, 30))
    sent = [backend._hf([{"role": "user", "content": [{"type": "image", "image": image}]}])[0]["content"][0]["image"]
            for image in (big, normal)]
    assert sent[0].size == (2048, 512) and sent[1] is normal
    assert isinstance(backend.chat([{"role": "user", "content": [{"type": "image", "image": big},
                                                                 {"type": "text", "text": "Describe."}]}]), str)
