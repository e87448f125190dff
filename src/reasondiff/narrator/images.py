"""Condition images in the forms the narrator needs: PIL for local models, PNG bytes for hashing and data URLs."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import PIL.Image

ImageLike = "PIL.Image.Image | str | Path | bytes"


def to_pil(image) -> PIL.Image.Image:
    """Accept a PIL image, a path or encoded bytes; return RGB, or raise ValueError naming what is wrong."""
    if isinstance(image, PIL.Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    if isinstance(image, (bytes, bytearray)):
        try:
            with PIL.Image.open(io.BytesIO(image)) as img:
                img.load()
                return img.convert("RGB")
        except (PIL.UnidentifiedImageError, PIL.Image.DecompressionBombError, OSError) as err:
            raise ValueError(f"the image bytes are not a readable image ({err})") from err
    if isinstance(image, (str, Path)):
        from ..media import load_image

        return load_image(image)
    raise TypeError(f"image must be a PIL image, a path or bytes, got {type(image).__name__}")


def fit(image: PIL.Image.Image, max_side: int | None) -> PIL.Image.Image:
    """Shrink so the longer side is at most `max_side`: MLLMs downscale anyway, and big PNGs cost upload time."""
    if max_side is None or max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), PIL.Image.BICUBIC)


def png_bytes(image: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(image: PIL.Image.Image) -> str:
    """The image as a `data:image/png;base64,...` URL, the form every OpenAI-compatible server accepts."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def fingerprint(image: PIL.Image.Image) -> str:
    """Hash of the decoded pixels (not the file), so the same picture saved twice still hits the cache."""
    digest = hashlib.sha256()
    digest.update(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()
