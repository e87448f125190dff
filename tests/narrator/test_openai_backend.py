"""The openai backend against a real HTTP server on 127.0.0.1 speaking chat completions."""

import base64
import io
import json
import socket

import pytest
from PIL import Image

from fakes import STORY
from reasondiff.narrator import NarrationError, NarratorBackendError, NarratorConnectionError, VisionNarrator
from reasondiff.narrator.backends.openai_backend import OpenAIBackend
from reasondiff.narrator.prompts import INSTRUCTION_VERSION, narrate_instruction

CLEAN = json.dumps({"position": STORY.position, "descriptions": STORY.descriptions})
PROMPT = "A cat plays in the room"


def last_user_text(request):
    content = request["body"]["messages"][-1]["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


def test_clean_answer_and_what_the_request_carries(chat_server, narrator_factory, small_image):
    chat_server.answer(CLEAN)
    n = narrator_factory().narrate(small_image, PROMPT, 9)
    assert (n.position, n.descriptions) == (STORY.position, STORY.descriptions)
    assert n.metadata["attempts"] == 1 and n.metadata["instruction_version"] == INSTRUCTION_VERSION
    assert n.metadata["narrator"] == f"openai:test-model@{chat_server.url}"

    (request,) = chat_server.requests
    assert request["path"] == "/v1/chat/completions"
    body = request["body"]
    assert body["model"] == "test-model"
    messages = body["messages"]
    # The paper's instruction (§3.2), with f filled in, leads the conversation.
    assert messages[0]["role"] == "system" and messages[0]["content"] == narrate_instruction(9)
    assert "Estimate the most likely position of the image within an 9-frame video" in messages[0]["content"]
    # In-context examples come as earlier turns, answered in the exact format.
    assert [m["role"] for m in messages[1:5]] == ["user", "assistant", "user", "assistant"]
    assert json.loads(messages[2]["content"])["position"] == 9
    # The image travels as a PNG data URL that decodes to the very pixels we sent.
    parts = messages[-1]["content"]
    url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
    assert url.startswith("data:image/png;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == small_image.size and sent.convert("RGB").tobytes() == small_image.tobytes()
    assert PROMPT in last_user_text(request) and "Number of frames: 9" in last_user_text(request)
    # Structured output is requested with the narration schema.
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["position", "descriptions"]


MALFORMED = {
    "fenced": f"```json\n{CLEAN}\n```",
    "prose": f"Let me think. The vase is broken, so it ends the story.\n{CLEAN}\nI hope this helps!",
    "trailing commas": CLEAN.replace('"]', '",]').replace("]}", "],}"),
    "single quotes": repr({"position": 9, "descriptions": STORY.descriptions}),
    "string position": CLEAN.replace('"position": 9', '"position": "9"'),
    "zero-based": json.dumps({"position": 8, "descriptions": {f"{s.start - 1}-{s.end - 1}": s.description
                                                              for s in STORY.segments()}}),
    "out of range": CLEAN.replace('"position": 9', '"position": 12'),
    "segments": json.dumps({"position": 9, "descriptions": {f"Frame@{s.start}-{s.end}": s.description
                                                           for s in STORY.segments()}}),
    "too many": STORY.resample(17).to_json(),
    "too few": STORY.resample(5).to_json(),
}


@pytest.mark.parametrize("form", MALFORMED)
def test_malformed_answers_are_repaired_in_one_request(chat_server, narrator_factory, small_image, form):
    chat_server.answer(MALFORMED[form])
    n = narrator_factory().narrate(small_image, PROMPT, 9)
    assert n.position == 9 and n.num_frames == 9
    assert [s.description for s in n.segments()] == [s.description for s in STORY.segments()]
    assert n.descriptions[0] == STORY.descriptions[0] and n.descriptions[-1] == STORY.descriptions[-1]
    if form in ("fenced", "prose", "trailing commas", "single quotes", "segments", "zero-based", "string position",
                "out of range"):
        assert n.descriptions == STORY.descriptions
    if form in ("too many", "too few", "out of range", "zero-based"):
        assert n.metadata["warnings"]
    assert len(chat_server.requests) == 1


def test_unrepairable_answer_is_retried_with_the_validation_error(chat_server, narrator_factory, small_image):
    chat_server.answer('{"descriptions": ["a vase"]}').answer(CLEAN)
    n = narrator_factory().narrate(small_image, PROMPT, 9)
    assert n.descriptions == STORY.descriptions and n.metadata["attempts"] == 2
    assert "no 'position'" in n.metadata["retried_after"][0]
    first, second = chat_server.requests
    messages = second["body"]["messages"]
    assert messages[:-2] == first["body"]["messages"]  # the same conversation, continued
    assert messages[-2] == {"role": "assistant", "content": '{"descriptions": ["a vase"]}'}
    assert "no 'position'" in last_user_text(second) and "exactly 9 descriptions" in last_user_text(second)


def test_exhausted_attempts_raise_narration_error_with_the_raw_text(chat_server, narrator_factory, small_image):
    for answer in ["no idea", "still no idea", "I refuse to answer in JSON"]:
        chat_server.answer(answer)
    with pytest.raises(NarrationError) as info:
        narrator_factory(max_attempts=3).narrate(small_image, PROMPT, 9)
    assert info.value.raw == "I refuse to answer in JSON"
    assert info.value.answers == ["no idea", "still no idea", "I refuse to answer in JSON"]
    assert "3 attempt(s)" in str(info.value) and "I refuse to answer in JSON" in str(info.value)
    assert len(chat_server.requests) == 3


@pytest.mark.parametrize("fault", ["429", "500", "503", "timeout"])
def test_transport_faults_are_retried_then_succeed(chat_server, narrator_factory, small_image, fault):
    for _ in range(2):
        if fault == "timeout":
            chat_server.slow(1.0, CLEAN)
        else:
            chat_server.fail(int(fault))
    chat_server.answer(CLEAN)
    n = narrator_factory(timeout=0.25).narrate(small_image, PROMPT, 9)
    assert n.descriptions == STORY.descriptions
    assert len(chat_server.requests) == 3


def test_backoff_is_exponential_bounded_and_honours_retry_after(chat_server, small_image):
    sleeps = []
    backend = OpenAIBackend("m", chat_server.url, max_retries=4, backoff=0.5, max_backoff=3.0, sleep=sleeps.append)
    chat_server.fail(500).fail(500).fail(429, headers={"Retry-After": "2.5"}).fail(500).answer("ok")
    assert backend.chat([{"role": "user", "content": [{"type": "text", "text": "hi"}]}]) == "ok"
    assert sleeps == [0.5, 1.0, 2.5, 3.0]  # 0.5, 1, max(2, Retry-After), min(4, cap)


def test_exhausted_transport_retries_raise_a_backend_error(chat_server, narrator_factory, small_image):
    for _ in range(4):
        chat_server.fail(503)
    with pytest.raises(NarratorBackendError, match=r"did not answer after 4 attempts \(HTTP 503, HTTP 503"):
        narrator_factory(max_retries=3).narrate(small_image, PROMPT, 9)
    assert len(chat_server.requests) == 4


def test_client_errors_are_not_retried(chat_server, narrator_factory, small_image):
    chat_server.fail(401, "invalid api key")
    with pytest.raises(NarratorBackendError, match="HTTP 401.*OPENAI_API_KEY.*invalid api key"):
        narrator_factory().narrate(small_image, PROMPT, 9)
    assert len(chat_server.requests) == 1


def test_connection_refused_names_the_url(small_image, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    narrator = VisionNarrator(f"openai:m@{url}", cache_dir=tmp_path, backoff=0.001)
    with pytest.raises(NarratorConnectionError, match=f"cannot connect .* at {url}"):
        narrator.narrate(small_image, PROMPT, 9)


def test_server_without_structured_output_gets_plain_text(chat_server, narrator_factory, small_image):
    def reject_schema(body):
        if "response_format" in body:
            return ("fail", 400, {"error": {"message": "response_format is not supported"}}, {})
        return ("answer", CLEAN)

    chat_server.script.extend([reject_schema] * 3)
    narrator = narrator_factory()
    assert narrator.narrate(small_image, PROMPT, 9).descriptions == STORY.descriptions
    assert ["response_format" in r["body"] for r in chat_server.requests] == [True, False]
    narrator.narrate(small_image, "another prompt", 9)  # remembered: no second rejected request
    assert ["response_format" in r["body"] for r in chat_server.requests] == [True, False, False]


def test_rewrite_and_caption(chat_server, narrator_factory, small_image):
    narrator = narrator_factory()
    chat_server.answer('Prompt: "A cat leaps onto the table and knocks the blue vase to the floor."')
    assert narrator.rewrite(small_image, PROMPT) == "A cat leaps onto the table and knocks the blue vase to the floor."
    assert "image-to-video model" in chat_server.requests[0]["body"]["messages"][0]["content"]
    assert "response_format" not in chat_server.requests[0]["body"]

    frames = [small_image, small_image.rotate(90), small_image.transpose(Image.FLIP_LEFT_RIGHT)]
    chat_server.answer("A red square on blue.").answer("").answer("A mirrored square.").answer("A rotated square.")
    assert narrator.caption(frames) == ["A red square on blue.", "A rotated square.", "A mirrored square."]
    # the empty caption for frame 2 was asked again, alone
    assert len(chat_server.requests) == 1 + 4
