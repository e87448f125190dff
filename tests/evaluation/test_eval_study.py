import json
import os
import random
import sqlite3
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reasondiff.evaluation.study import StudyStore, aggregate, create_study, make_server
from reasondiff.media import save_video

METHODS = ["reasondiff", "wan", "rewrite", "no_enhanced_latents", "no_multi_prompt"]
CHROMIUM = os.environ.get("REASONDIFF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def run_dir(tmp_path):
    """An `eval run` folder with 3 cases x 5 methods of small videos, H.264 mp4 for 'wan' and GIF for the rest
    (case2 lacks 'rewrite')."""
    folder = tmp_path / "run"
    rows = []
    for case in range(3):
        image = tmp_path / f"image{case}.png"
        Image.new("RGB", (32, 32), (40 * case, 90, 200)).save(image)
        for i, method in enumerate(METHODS):
            if case == 2 and method == "rewrite":
                continue
            video = Path("videos") / method / f"c{case}.{'mp4' if method == 'wan' else 'gif'}"
            save_video(np.full((3, 32, 32, 3), 0.15 * i, np.float32), folder / video, fps=8)
            rows.append({"case_id": f"c{case}", "mode": method, "method": method, "video": str(video),
                         "image": str(image), "prompt": f"a cat plays in room {case}", "metrics": {}})
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture
def study_db(tmp_path, run_dir):
    db = tmp_path / "study.sqlite"
    assert create_study(db, [run_dir], METHODS, questions_per_participant=2) == 2  # case2 is incomplete
    return db


def answer_by_method(store, participant, position, ranks):
    order = store.page(participant, position)["order"]
    store.answer(participant, position, [ranks[m] for m in order])


def test_each_participant_gets_a_recorded_random_order(study_db):
    store = StudyStore(study_db, rng=random.Random(0))
    participants = [store.new_participant() for _ in range(4)]
    orders = []
    for p in participants:
        pages = [store.page(p, k) for k in range(2)]
        assert sorted(page["case_id"] for page in pages) == ["c0", "c1"]
        for page in pages:
            assert sorted(page["order"]) == sorted(METHODS)
            assert [Path(v).relative_to(Path(page["image"]).parent / "run" / "videos").parts[0]
                    for v in page["videos"]] == page["order"]
            orders.append(tuple(page["order"]))
    assert len(set(orders)) > 1  # not one fixed order for everyone
    with sqlite3.connect(study_db) as db:
        assert db.execute("SELECT COUNT(*) FROM assignments").fetchone()[0] == 8


def test_aggregation_matches_hand_computed_ranks(study_db):
    store = StudyStore(study_db, rng=random.Random(1))
    first, second = store.new_participant(), store.new_participant()
    answer_by_method(store, first, 0, dict(reasondiff=1, wan=2, rewrite=3, no_enhanced_latents=4, no_multi_prompt=5))
    answer_by_method(store, first, 1, dict(reasondiff=2, wan=1, rewrite=3, no_enhanced_latents=5, no_multi_prompt=4))
    answer_by_method(store, second, 0, dict(reasondiff=1, wan=3, rewrite=2, no_enhanced_latents=4, no_multi_prompt=5))
    ranks = aggregate(study_db)
    third = np.sqrt(2 / 9)  # population std of {a, a, a±1}
    assert ranks["reasondiff"] == pytest.approx({"mean": 4 / 3, "std": third, "n": 3})
    assert ranks["wan"] == pytest.approx({"mean": 2.0, "std": np.sqrt(2 / 3), "n": 3})
    assert ranks["rewrite"] == pytest.approx({"mean": 8 / 3, "std": third, "n": 3})
    assert ranks["no_enhanced_latents"]["mean"] == pytest.approx(13 / 3)
    assert ranks["no_multi_prompt"]["mean"] == pytest.approx(14 / 3)
    # resubmitting a page replaces the answer instead of counting twice
    answer_by_method(store, second, 0, dict(reasondiff=5, wan=3, rewrite=2, no_enhanced_latents=4, no_multi_prompt=1))
    assert aggregate(study_db)["reasondiff"]["mean"] == pytest.approx(8 / 3)
    with pytest.raises(ValueError, match="different rank from 1 to 5"):
        store.answer(first, 0, [1, 1, 2, 3, 4])


def test_study_creation_refusals(tmp_path, run_dir, study_db):
    with pytest.raises(ValueError, match="already exists"):
        create_study(study_db, [run_dir], METHODS)
    with pytest.raises(ValueError, match="no videos for method"):
        create_study(tmp_path / "x.sqlite", [run_dir], ["reasondiff", "cogvideox"])
    with pytest.raises(ValueError, match="not found"):
        StudyStore(tmp_path / "missing.sqlite")


@pytest.fixture
def server(study_db):
    srv = make_server(study_db, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", StudyStore(study_db)
    srv.shutdown()
    srv.server_close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


def test_http_flow_and_blind_media_urls(server):
    base, store = server
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as start:
        opener.open(urllib.request.Request(base + "/start", data=b"", method="POST"))
    assert start.value.code == 303
    location = start.value.headers["Location"]
    participant = location.split("/")[2]
    page = urllib.request.urlopen(base + location).read().decode()
    assert "a cat plays in room" in page and page.count("rank_") == 10
    assert not any(m in page for m in ("reasondiff", "no_multi_prompt", "/videos/"))  # the methods stay hidden
    for slot, method in enumerate(store.page(participant, 0)["order"]):
        media = urllib.request.urlopen(base + location + "/video/" + "ABCDE"[slot])
        kind = media.headers["Content-Type"]
        assert (kind, media.read()[4:8] if method == "wan" else media.read()[:3]) == (
            ("video/mp4", b"ftyp") if method == "wan" else ("image/gif", b"GIF"))
    bad = urllib.parse.urlencode({f"rank_{c}": 1 for c in "ABCDE"}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base + location, data=bad)
    assert refused.value.code == 400 and "different rank" in refused.value.read().decode()
    assert store.answers() == []
    good = urllib.parse.urlencode({f"rank_{c}": i + 1 for i, c in enumerate("ABCDE")}).encode()
    with pytest.raises(urllib.error.HTTPError) as moved:
        opener.open(base + location, data=good)
    assert moved.value.headers["Location"] == f"/p/{participant}/2"
    [answer] = store.answers()
    assert answer["ranks"] == {m: i + 1 for i, m in enumerate(store.page(participant, 0)["order"])}


def _browser():
    required = os.environ.get("REASONDIFF_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed")
    if not Path(CHROMIUM).is_file():
        if required:
            pytest.fail(f"{CHROMIUM} not found (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    return sync_playwright


def test_ranking_in_headless_chromium(server):
    sync_playwright = _browser()
    base, store = server
    wanted = dict(reasondiff=1, wan=2, rewrite=3, no_enhanced_latents=4, no_multi_prompt=5)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(base + "/")
            page.click("#start")
            page.wait_for_url("**/p/*/1")
            participant = page.url.split("/")[-2]
            assert page.locator("#prompt").inner_text().startswith("Text: a cat plays in room")
            assert (page.locator(".video img").count(), page.locator(".video video").count()) == (4, 1)
            # every medium really loads: the GIFs decode and the H.264 mp4 plays (Debian's chromium has the codec)
            page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
            page.wait_for_function("document.querySelector('video').readyState >= 2")
            assert page.evaluate("document.querySelector('video').videoWidth") == 32
            # duplicate ranks are refused with a message and nothing is stored
            for letter in "ABCDE":
                page.select_option(f"#rank_{letter}", "2")
            page.click("#submit")
            assert "different rank" in page.locator("#error").inner_text()
            assert store.answers() == []
            for number in (1, 2):
                order = store.page(participant, number - 1)["order"]
                for slot, method in enumerate(order):
                    page.select_option(f"#rank_{'ABCDE'[slot]}", str(wanted[method]))
                page.click("#submit")
                page.wait_for_url(f"**/p/{participant}/{'2' if number == 1 else 'done'}")
            assert page.locator("#done").inner_text() == "Thank you!"
        finally:
            browser.close()
    answers = store.answers()
    assert [a["ranks"] for a in answers] == [wanted, wanted]
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT participant_id, position, display_order FROM answers ORDER BY position").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(participant, 0), (participant, 1)]
    assert [json.loads(r[2]) for r in rows] == [store.page(participant, k)["order"] for k in (0, 1)]
    assert aggregate(store.path)["reasondiff"] == {"mean": 1.0, "std": 0.0, "n": 2}
