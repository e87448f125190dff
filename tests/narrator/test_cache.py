import json
import subprocess
import sys
import textwrap
import time

from fakes import STORY
from reasondiff.narrator import VisionNarrator
from reasondiff.narrator import cache as cache_module
from reasondiff.narrator.cache import AnswerCache, cache_key

CLEAN = json.dumps({"position": STORY.position, "descriptions": STORY.descriptions})


def test_identical_call_makes_no_request_and_changes_do(chat_server, narrator_factory, small_image):
    narrator = narrator_factory()
    for _ in range(4):
        chat_server.answer(CLEAN)
    first = narrator.narrate(small_image, "A cat plays", 9)
    again = narrator_factory().narrate(small_image.copy(), "A cat plays", 9)  # a new narrator, same folder
    assert again == first and len(chat_server.requests) == 1
    narrator.narrate(small_image, "A dog plays", 9)  # prompt changed
    assert len(chat_server.requests) == 2
    narrator.narrate(small_image, "A cat plays", 17)  # frame count changed
    assert len(chat_server.requests) == 3
    narrator.narrate(small_image.rotate(180), "A cat plays", 9)  # image changed
    assert len(chat_server.requests) == 4


def test_cache_can_be_switched_off(chat_server, narrator_factory, small_image):
    narrator = narrator_factory(use_cache=False)
    chat_server.answer(CLEAN).answer(CLEAN)
    narrator.narrate(small_image, "A cat plays", 9)
    narrator.narrate(small_image, "A cat plays", 9)
    assert len(chat_server.requests) == 2


def test_rewrite_is_cached_too(chat_server, narrator_factory, small_image):
    chat_server.answer("A cat knocks the vase over.")
    narrator = narrator_factory()
    assert narrator.rewrite(small_image, "A cat plays") == narrator.rewrite(small_image, "A cat plays")
    assert len(chat_server.requests) == 1


def test_environment_variable_sets_the_folder(chat_server, small_image, tmp_path, monkeypatch):
    monkeypatch.setenv("REASONDIFF_CACHE", str(tmp_path / "env-cache"))
    chat_server.answer(CLEAN)
    VisionNarrator(f"openai:m@{chat_server.url}").narrate(small_image, "A cat plays", 9)
    files = list((tmp_path / "env-cache" / "narrator").glob("??/*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["value"]["position"] == 9


def test_a_corrupt_entry_is_a_miss_and_is_rewritten(tmp_path):
    cache = AnswerCache(tmp_path)
    key = cache_key(kind="narrate", prompt="p")
    cache.put(key, {"a": 1})
    cache.path(key).write_text('{"value": {"a": 1')  # as if a writer died mid-file without os.replace
    assert cache.get(key) is None
    cache.put(key, {"a": 2})
    assert cache.get(key) == {"a": 2} and len(cache) == 1
    assert not list(tmp_path.glob("**/*.tmp"))


def test_keys_depend_on_every_field():
    base = dict(kind="narrate", image="abc", prompt="p", num_frames=9, backend="openai:m", instruction_version="v1")
    keys = {cache_key(**base)} | {cache_key(**{**base, field: "changed"}) for field in base}
    assert len(keys) == len(base) + 1
    assert cache_key(**base) == cache_key(**dict(reversed(list(base.items()))))  # order does not matter


WRITER = textwrap.dedent(
    """
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("cache", sys.argv[3])  # the module alone: starts fast
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cache, me = module.AnswerCache(sys.argv[1]), int(sys.argv[2])
    for i in range(60):
        cache.put("ab" + "0" * 62, {"writer": me, "i": i, "payload": [me] * 3000})
    """
)


def test_concurrent_processes_never_expose_a_partial_file(tmp_path):
    key = "ab" + "0" * 62
    source = cache_module.__file__
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(n), source]) for n in range(3)]
    cache, seen = AnswerCache(tmp_path), 0
    while any(w.poll() is None for w in writers):
        path = cache.path(key)
        if path.exists():
            value = json.loads(path.read_text())["value"]  # raw read: a torn file would fail to parse here
            assert value["payload"] == [value["writer"]] * 3000
            seen += 1
        time.sleep(0.002)
    assert [w.wait() for w in writers] == [0, 0, 0]
    assert cache.get(key)["i"] == 59 and seen > 0
    assert not list(tmp_path.glob("**/*.tmp"))
