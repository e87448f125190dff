"""The acceptance path in a real browser: upload, prompt, narrate, edit, generate, watch; bad uploads explained."""

import json
import urllib.request

import imageio.v3 as iio
import pytest

from reasondiff import Narration
from reasondiff.example import bundled_example

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def status(page):
    return page.locator("#rd-status")


def test_narrate_edit_generate_and_play(page, live_studio, tmp_path):
    narrator = live_studio.test_narrator
    narrator.calls.clear()
    page.locator("#rd-image input[type=file]").set_input_files(str(bundled_example().image_path))
    page.wait_for_selector("#rd-status:has-text('Image ready')")
    page.locator("#rd-prompt textarea").fill("A cat plays in the room")
    page.locator("#rd-narrate").click()
    page.wait_for_selector("#rd-status:has-text('placed the image at frame 17')")
    assert narrator.calls == [("narrate", "A cat plays in the room", 17)]
    assert "Frame@5-10 a cat enters and knocks the vase" in page.locator("#rd-strip").inner_text()

    # Edit the middle segment's text, then move the image from the last frame to frame 12.
    page.locator('#rd-table [data-testid="cell-1-2"]').dblclick()
    page.keyboard.press("Control+A")
    page.keyboard.type("a dog bursts in and knocks the vase")
    page.keyboard.press("Enter")
    page.wait_for_selector("#rd-strip:has-text('a dog bursts in and knocks the vase')")
    anchor = page.locator("#rd-anchor input[type=number]")
    anchor.fill("12")
    anchor.press("Enter")
    page.wait_for_selector("#rd-strip:has-text('the image is frame 12')")

    page.locator("#rd-generate").click()
    page.wait_for_selector("#rd-status:has-text('Generated'), #rd-status .rd-error", timeout=120_000)
    assert status(page).inner_text().startswith("Generated 17 frames"), status(page).inner_text()

    # The page's video element plays, and the file it plays has the frames asked for.
    page.wait_for_function(
        "() => { const v = document.querySelector('#rd-video video');"
        " return v && v.readyState >= 2 && !v.paused && v.currentTime > 0 && !v.error; }"
    )
    width, duration = page.evaluate(
        "() => { const v = document.querySelector('#rd-video video'); return [v.videoWidth, v.duration]; }"
    )
    assert width == 64 and duration == pytest.approx(17 / 8, abs=0.2)
    src = page.locator("#rd-video video").get_attribute("src")
    assert src.startswith(live_studio.test_url)
    clip = tmp_path / "played.mp4"
    clip.write_bytes(urllib.request.urlopen(src, timeout=30).read())
    assert iio.imread(clip).shape == (17, 64, 64, 3)

    # The script offered for download is the edited one.
    assert ".narration.json" in page.locator("#rd-files").inner_text()
    (script_file,) = live_studio.test_out.glob("*-reasondiff-*.narration.json")
    used = Narration.from_json(script_file.read_text())
    assert used.position == 12
    assert used.descriptions[4:10] == ["a dog bursts in and knocks the vase"] * 6
    assert json.loads(script_file.read_text())["metadata"]["generation"]["num_frames"] == 17

    # Nothing left the machine: every request went to the local server (or stayed inside the page).
    outside = [u for u in page.requested if not u.startswith((live_studio.test_url, "data:", "blob:"))]
    assert page.requested and not outside, outside


def test_load_example_fills_the_inputs_and_its_script(page):
    page.locator("#rd-example").click()
    page.wait_for_selector("#rd-strip:has-text('Frame@14-17')")
    assert "Loaded the bundled example" in status(page).inner_text()
    assert page.locator("#rd-prompt textarea").input_value() == bundled_example().prompt
    assert page.locator("#rd-image img").count() == 1  # the packaged image is served to the page
    assert page.locator('#rd-table [data-testid="cell-4-2"]').inner_text().startswith("a broken vase")


def test_non_image_upload_is_refused_with_a_message(page, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("these are my notes, not a picture\n")
    page.locator("#rd-image input[type=file]").set_input_files(str(fake))
    page.wait_for_selector("#rd-status .rd-error")
    assert "notes.png is not an image" in status(page).inner_text()
    assert page.locator("#rd-image img").count() == 0  # the bad file is not kept as the condition image
    assert "Traceback" not in page.locator("body").inner_text()


def test_oversized_upload_is_refused_with_a_message(page, tmp_path):
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(1_500_000))  # 1.5 MB against a 1 MB cap
    page.locator("#rd-image input[type=file]").set_input_files(str(big))
    message = page.locator("[data-testid='toast-body']:has-text('maximum allowed size'), #rd-status .rd-error")
    message.first.wait_for()
    assert "huge.png" in message.first.inner_text()
    assert "Image ready" not in status(page).inner_text()


def test_after_a_refused_upload_narrate_says_why_there_is_no_image(page, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("these are my notes, not a picture\n")
    page.locator("#rd-image input[type=file]").set_input_files(str(fake))
    page.wait_for_selector("#rd-status .rd-error")
    page.locator("#rd-prompt textarea").fill("A cat plays in the room")
    page.locator("#rd-narrate").click()
    page.wait_for_selector("#rd-status .rd-error:has-text('last upload was not used')")
    assert "because notes.png is not an image: it is text" in status(page).inner_text()
