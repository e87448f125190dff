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


@pytest.mark.parametrize("content, why", [
    (b"these are my notes, not a picture\n", "it is text ('these are my notes, not a picture'...)"),
    (b"", "the file is empty (0 bytes)"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "it is a PDF document"),
    (b"\x89PNG\r\n\x1a\n" + bytes(1000), "it starts like a PNG but is damaged"),
    (bytes(range(256)), "its bytes match no image format"),
])
def test_a_refused_file_is_named_with_what_it_is_instead(tmp_path, content, why):
    path = tmp_path / "holiday.png"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        check_image_upload(path)
    message = str(info.value)
    assert message.startswith("holiday.png is not an image: ") and why in message and "\n" not in message
    assert str(tmp_path) not in message  # the server's folders are not the user's business


def test_a_truncated_picture_is_called_damaged(tmp_path, condition_image):
    whole = tmp_path / "whole.png"
    condition_image.save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cut.png is not an image: it starts like a PNG but is damaged \("):
        check_image_upload(cut)


def test_a_very_large_picture_is_resized_and_says_so(tmp_path):
    """A 45-megapixel photo was refused, and the page then said only "no image"; it is shrunk to what the
    narrator and the video use, and the page is told."""
    path = tmp_path / "camera.png"
    picture = Image.new("RGB", (9000, 5000), (200, 180, 40))
    picture.paste((20, 60, 200), (3000, 1000, 6000, 4000))
    picture.save(path, compress_level=1)
    image, note = uploads.read_image_upload(path, max_mb=10)
    assert image.size == (2048, 1138) and image.getpixel((1024, 569)) == (20, 60, 200)
    assert note == "resized from 9000x5000 to 2048x1138: the narrator and the video use no more than 2048 pixels"
    normal = tmp_path / "normal.png"
    Image.new("RGB", (1920, 1080), (1, 2, 3)).save(normal)
    assert uploads.read_image_upload(normal)[1] == "" and check_image_upload(normal).size == (1920, 1080)


def test_a_picture_too_large_to_open_is_refused_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_PIXELS", 1000)
    png = tmp_path / "wide.png"
    Image.new("RGB", (100, 20)).save(png)
    with pytest.raises(ValueError, match=r"wide.png is 100x20 pixels, too large to open safely: .* shrink it"):
        check_image_upload(png)


def test_no_image_says_what_to_upload():
    assert str(pytest.raises(ValueError, check_image_upload, None, 3).value) == \
        "no image: upload a condition image (PNG, JPEG, WebP, BMP or GIF, at most 3 MB)"
