"""What `reasondiff demo` prints when the studio starts: its own address line, not Gradio's share-link advice."""

import socket
import urllib.request

import pytest


def test_launch_prints_the_address_and_no_share_hint(tiny_pipeline, tmp_path, capfd):
    pytest.importorskip("gradio")
    from reasondiff.app.studio import build_app, launch

    blocks = build_app(tiny_pipeline, None, output_dir=tmp_path, steps=1)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        launch(blocks, "127.0.0.1", port, block=False)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            assert page.status == 200
    finally:
        blocks.close()
    printed = capfd.readouterr()
    assert f"studio at http://127.0.0.1:{port}/" in printed.out
    assert "share=True" not in printed.out + printed.err and "public link" not in printed.out + printed.err
