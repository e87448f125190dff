import json

import numpy as np
import pytest

from fakes import STORY, ScriptedChat
from reasondiff.narrator import VisionNarrator, available_backends, create_backend, register_backend
from reasondiff.narrator.backends.openai_backend import OpenAIBackend
from reasondiff.narrator.registry import parse_spec


def test_a_registered_backend_serves_spec_strings(small_image, tmp_path):
    register_backend("scripted", ScriptedChat.plugin, replace=True)
    assert {"openai", "transformers", "scripted"} <= set(available_backends())
    answer = json.dumps({"position": 9, "descriptions": STORY.descriptions})
    narrator = VisionNarrator("scripted:world-1", answers=[answer], cache_dir=tmp_path)
    assert narrator.narrate(small_image, "A cat plays", 9).descriptions == STORY.descriptions
    assert narrator.backend.conversations[0][-1]["content"][0]["image"].size == small_image.size


def test_names_cannot_be_taken_twice_by_accident():
    with pytest.raises(ValueError, match="already registered"):
        register_backend("openai", ScriptedChat.plugin)
    with pytest.raises(ValueError, match="short words"):
        register_backend("a:b", ScriptedChat.plugin)


@pytest.mark.parametrize(
    "spec, model, url",
    [
        ("openai:gpt-4o", "gpt-4o", "https://api.openai.com/v1"),
        ("openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1", "Qwen/Qwen2.5-VL-7B-Instruct", "http://localhost:8000/v1"),
        ("openai:qwen2.5vl:7b@http://127.0.0.1:11434/v1/", "qwen2.5vl:7b", "http://127.0.0.1:11434/v1"),  # Ollama
    ],
)
def test_openai_specs(spec, model, url, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    backend = create_backend(spec)
    assert isinstance(backend, OpenAIBackend) and (backend.model, backend.base_url) == (model, url)
    assert backend.cache_id == f"openai:{model}@{url}"


def test_default_spec_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REASONDIFF_NARRATOR", "openai:my-model@http://127.0.0.1:9/v1")
    assert VisionNarrator(cache_dir=tmp_path).backend.model == "my-model"


def test_gpt4o_without_a_key_says_what_to_set(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="set OPENAI_API_KEY"):
        create_backend("openai:gpt-4o")


@pytest.mark.parametrize("spec, message", [("gpt-4o", "NAME:TARGET"), ("nosuch:model", "unknown narrator backend 'nosuch'"),
                                           ("openai:", "needs a model name")])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        create_backend(spec)


def test_parse_spec():
    assert parse_spec("transformers:/models/a:b") == ("transformers", "/models/a:b")


def test_caption_takes_arrays_and_sends_their_pixels(tmp_path):
    backend = ScriptedChat(["a red frame", "a grey frame"])
    narrator = VisionNarrator(backend, cache_dir=tmp_path)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    grey = np.full((8, 8, 3), 0.5, np.float32)  # floats in [0, 1], as the pipeline returns frames
    assert narrator.caption([red, grey]) == ["a red frame", "a grey frame"]
    sent = [c[0]["content"][0]["image"] for c in backend.conversations]
    assert sent[0].getpixel((0, 0)) == (255, 0, 0) and sent[1].getpixel((0, 0)) == (128, 128, 128)
