"""Fixtures for the studio: one tiny pipeline per session, a live server on 127.0.0.1, and Debian's Chromium.

The browser tests need `playwright` (pip) and a Chromium binary (Debian: `apt-get install chromium`); Playwright's
own browser download is never used. Without them the browser tests skip, unless REASONDIFF_REQUIRE_BROWSER=1
(set in CI), where a missing browser is a failure rather than a silent skip.
"""

import os
import shutil
import socket

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MAX_UPLOAD_MB = 1.0


def _missing(reason):
    if os.environ.get("REASONDIFF_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (REASONDIFF_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def chromium_path():
    """$REASONDIFF_CHROMIUM, else `chromium` / `chromium-browser` on PATH (Debian installs /usr/bin/chromium)."""
    candidates = [os.environ.get("REASONDIFF_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")]
    return next((c for c in candidates if c and os.path.exists(c)), None)


@pytest.fixture(scope="session")
def tiny_pipeline():
    from reasondiff import ReasonDiffPipeline
    from reasondiff.models import tiny_wan

    pipe = ReasonDiffPipeline(**tiny_wan.wan_components(seed=0), alignformer=tiny_wan.alignformer(seed=0))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_studio(tiny_pipeline, tmp_path_factory):
    """The studio served on 127.0.0.1 with the tiny pipeline and a scripted narrator."""
    pytest.importorskip("gradio")
    from fakes import ScriptedNarrator

    from reasondiff.app.studio import build_app, launch

    narrator = ScriptedNarrator()
    out = tmp_path_factory.mktemp("studio-out")
    blocks = build_app(tiny_pipeline, narrator, max_upload_mb=MAX_UPLOAD_MB, output_dir=out, steps=2)
    port = free_port()
    launch(blocks, "127.0.0.1", port, max_upload_mb=MAX_UPLOAD_MB, block=False, quiet=True)
    blocks.test_url, blocks.test_narrator, blocks.test_out = f"http://127.0.0.1:{port}", narrator, out
    yield blocks
    blocks.close()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright)")
    path = chromium_path()
    if path is None:
        _missing("no Chromium found: apt-get install chromium, or set REASONDIFF_CHROMIUM")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_studio):
    context = browser.new_context()
    page = context.new_page()
    page.requested = []  # every URL the page asks for: the studio must not reach beyond 127.0.0.1
    page.on("request", lambda request: page.requested.append(request.url))
    page.set_default_timeout(60_000)
    page.goto(live_studio.test_url, wait_until="networkidle")
    yield page
    context.close()
