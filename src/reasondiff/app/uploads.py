"""Checks on what a browser uploads, before any of it reaches PIL's decoders or the pipeline.

The server also caps the upload size (Gradio's `max_file_size`), so an oversized file is refused before it is
stored; this check repeats the cap for files that arrive by other routes and adds what the browser's `accept`
attribute cannot enforce: the bytes must decode as an image of an allowed format and a sane pixel count.
"""

from __future__ import annotations

from pathlib import Path

import PIL.Image

DEFAULT_MAX_MB = 10.0
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
MAX_PIXELS = 40_000_000  # larger images are decompression bombs or scans, not video condition frames


def check_image_upload(path: str | Path | None, max_mb: float = DEFAULT_MAX_MB) -> PIL.Image.Image:
    """The uploaded file as an RGB image, or ValueError saying what is wrong with it (size, type, pixels)."""
    if path is None or str(path) == "":
        raise ValueError("no image: upload a condition image (PNG, JPEG, WebP, BMP or GIF)")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"the uploaded file is gone ({path.name}); upload it again")
    size = path.stat().st_size
    if size > max_mb * 2**20:
        raise ValueError(f"{path.name} is {size / 2**20:.1f} MB; images must be at most {max_mb:g} MB")
    try:
        with PIL.Image.open(path) as img:
            if img.format not in FORMATS:
                raise ValueError(f"{path.name} is a {img.format} image; upload one of {', '.join(FORMATS)}")
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"{path.name} is {img.width}x{img.height} pixels; at most {MAX_PIXELS:,} are accepted")
            img.load()
            return img.convert("RGB")
    except (PIL.UnidentifiedImageError, OSError, PIL.Image.DecompressionBombError) as err:
        raise ValueError(f"{path.name} is not an image ({type(err).__name__}); upload PNG, JPEG, WebP, BMP or GIF") from err
