"""What users hand in: a true clip after the codecs and edits an honest video goes through.

Measures v3 (issue #31) must not call these cuts: a true clip written as ordinary H.264 (crf 23, libx264's
default, and crf 28), its frames saved as JPEG at quality 25, downscaled to 32 px and back, shifted two frames
either way in time (the story starts earlier or later; the ends are held), and mirrored left to right. Each
must keep at least 0.95 of the clean truth's causal order (`tests/mini/test_measures.py`, benchmarks/measures_v3.py).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

VARIANTS = ("h264_crf23", "h264_crf28", "jpeg_q25", "down32", "shift_plus2", "shift_minus2", "mirrored")


def h264(frames: np.ndarray, crf: int, fps: int = 8) -> np.ndarray:
    """uint8 `[F, H, W, 3]` through libx264 (yuv420p, `crf`) and back, in memory."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": str(crf), "threads": "1"}  # one thread: the same bytes every run
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer, mode="r") as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    if len(decoded) != len(frames):
        raise RuntimeError(f"libx264 returned {len(decoded)} frames for {len(frames)}")
    return decoded


def jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    out = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    return np.stack(out)


def rescaled(frames: np.ndarray, size: int) -> np.ndarray:
    """Down to `size` px (area filter) and back up to the original size (bicubic)."""
    height, width = frames.shape[1:3]
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BOX)
                                .resize((width, height), Image.Resampling.BICUBIC)) for f in frames])


def shifted(frames: np.ndarray, by: int) -> np.ndarray:
    """The story `by` frames later (> 0: the first frame held at the start) or earlier (< 0: the last held at the end)."""
    if by >= 0:
        return np.concatenate([np.repeat(frames[:1], by, 0), frames[:len(frames) - by]])
    return np.concatenate([frames[-by:], np.repeat(frames[-1:], -by, 0)])


def variant(name: str, frames: np.ndarray) -> np.ndarray:
    """The `name` variant (`VARIANTS`) of uint8 frames `[F, H, W, 3]`."""
    if name.startswith("h264_crf"):
        return h264(frames, int(name.removeprefix("h264_crf")))
    if name == "jpeg_q25":
        return jpeg(frames, 25)
    if name == "down32":
        return rescaled(frames, 32)
    if name in ("shift_plus2", "shift_minus2"):
        return shifted(frames, 2 if name == "shift_plus2" else -2)
    if name == "mirrored":
        return frames[:, :, ::-1].copy()
    raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
