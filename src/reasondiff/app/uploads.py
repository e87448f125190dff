"""Checks on what a browser uploads, before any of it reaches PIL's decoders or the pipeline.

The server also caps the upload size (Gradio's `max_file_size`), so an oversized file is refused before it is
stored; this check repeats the cap for files that arrive by other routes and adds what the browser's `accept`
attribute cannot enforce: the bytes must decode as an image of an allowed format and a sane pixel count.
Every refusal names the file and says why; a large picture is shrunk (`MAX_SIDE`) rather than refused.
"""

from __future__ import annotations

from pathlib import Path

import PIL.Image

DEFAULT_MAX_MB = 10.0
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
ACCEPTED = "PNG, JPEG, WebP, BMP or GIF"
MAX_PIXELS = 100_000_000  # 300 MB decoded: beyond, a decompression bomb or a scan, not a video condition frame
MAX_SIDE = 2048  # no narrator reads more (the OpenAI backend sends 1024, a local VLM 2048) and no video is wider


def no_image_message(max_mb: float = DEFAULT_MAX_MB) -> str:
    return f"no image: upload a condition image ({ACCEPTED}, at most {max_mb:g} MB)"


def check_image_upload(path: str | Path | None, max_mb: float = DEFAULT_MAX_MB) -> PIL.Image.Image:
    """The uploaded file as an RGB image (shrunk to `MAX_SIDE`), or ValueError saying what is wrong with it."""
    return read_image_upload(path, max_mb)[0]


def read_image_upload(path: str | Path | None, max_mb: float = DEFAULT_MAX_MB) -> tuple[PIL.Image.Image, str]:
    """The uploaded file as an RGB image and a note for the page ("" or how it was resized), or ValueError
    naming the file and what is wrong with it (size, type, pixels)."""
    if path is None or str(path) == "":
        raise ValueError(no_image_message(max_mb))
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"the uploaded file is gone ({path.name}); upload it again")
    size = path.stat().st_size
    if size > max_mb * 2**20:
        raise ValueError(f"{path.name} is {size / 2**20:.1f} MB; images must be at most {max_mb:g} MB")
    try:
        with PIL.Image.open(path) as img:
            if img.format not in FORMATS:
                raise ValueError(f"{path.name} is a {img.format} image; upload one of {ACCEPTED}")
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"{path.name} is {img.width}x{img.height} pixels, too large to open safely: at most "
                                 f"{MAX_PIXELS // 1_000_000} million are accepted; shrink it (e.g. to {MAX_SIDE} "
                                 "pixels wide) and upload it again")
            img.load()
            image = img.convert("RGB")
    except (PIL.UnidentifiedImageError, OSError, PIL.Image.DecompressionBombError, SyntaxError) as err:
        raise ValueError(f"{path.name} is not an image: {_why_not(path, size, err)}; upload a {ACCEPTED}") from err
    if max(image.size) <= MAX_SIDE:
        return image, ""
    scale = MAX_SIDE / max(image.size)
    shrunk = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                          PIL.Image.LANCZOS)
    return shrunk, (f"resized from {image.width}x{image.height} to {shrunk.width}x{shrunk.height}: "
                    f"the narrator and the video use no more than {MAX_SIDE} pixels")


MAGIC = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP", b"RIFF": "WebP"}


def _why_not(path: Path, size: int, err: Exception) -> str:
    """What the file is instead, in words a user recognises (empty, text, a PDF, a damaged picture)."""
    if size == 0:
        return "the file is empty (0 bytes)"
    with open(path, "rb") as file:
        head = file.read(512)
    kind = next((name for magic, name in MAGIC.items() if head.startswith(magic)), None)
    if kind is not None or not isinstance(err, PIL.UnidentifiedImageError):
        word = kind or "image"
        detail = "no decoder reads it" if isinstance(err, PIL.UnidentifiedImageError) else str(err)
        return f"it starts like a{'n' if word[0] in 'AEIOUaeiou' else ''} {word} but is damaged ({detail})"
    if head.startswith(b"%PDF"):
        return "it is a PDF document"
    text = head.decode("utf-8", errors="replace").rstrip("\ufffd")  # a character cut at byte 512 is not binary
    if "\ufffd" in text or any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        return "its bytes match no image format"
    first = " ".join(text.split())[:40]
    return f"it is text ({first!r}...)" if first else "it holds only blank text"
