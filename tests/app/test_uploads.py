"""What an upload must be before it becomes a condition image."""

import pytest
from PIL import Image

from reasondiff.app import uploads
from reasondiff.app.uploads import check_image_upload


def test_a_png_is_accepted_as_rgb(tmp_path, condition_image):
    path = tmp_path / "cond.png"
    condition_image.convert("RGBA").save(path)
    image = check_image_upload(path)
    assert image.mode == "RGB" and image.size == (64, 64)


@pytest.mark.parametrize("content, message", [
    (b"just some text", "notes.png is not an image"),
    (b"", "notes.png is not an image"),
])
def test_non_images_are_refused(tmp_path, content, message):
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        check_image_upload(path)


def test_oversized_files_are_refused_before_decoding(tmp_path, condition_image):
    path = tmp_path / "big.png"
    condition_image.save(path)
    with open(path, "ab") as f:
        f.write(bytes(2 * 2**20))  # a valid PNG followed by 2 MB of padding
    with pytest.raises(ValueError, match=r"big.png is 2.0 MB; images must be at most 1 MB"):
        check_image_upload(path, max_mb=1)
    assert check_image_upload(path, max_mb=3).size == (64, 64)


def test_other_formats_and_huge_pixel_counts_are_refused(tmp_path, condition_image, monkeypatch):
    tiff = tmp_path / "scan.tiff"
    condition_image.save(tiff)
    with pytest.raises(ValueError, match="scan.tiff is a TIFF image"):
        check_image_upload(tiff)
    monkeypatch.setattr(uploads, "MAX_PIXELS", 1000)
    png = tmp_path / "wide.png"
    Image.new("RGB", (100, 20)).save(png)
    with pytest.raises(ValueError, match="100x20 pixels"):
        check_image_upload(png)


def test_missing_upload_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="upload a condition image"):
        check_image_upload(None)
    with pytest.raises(ValueError, match="upload it again"):
        check_image_upload(tmp_path / "gone.png")
