"""Real video files for the data tests, written with PyAV (libx264) and ffmpeg, whose pixels say which frame they are.

Every frame carries its index as 16 black/white blocks (4x4 of 16 px in a 64x64 picture), which survive H.264 and
a resize to 32 px, so a test can tell from the sampled pixels which source frame was taken.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np

TIME_BASE = Fraction(1, 90000)
GOOD = ["fps24", "fps25", "fps2997", "vfr", "rotated"]  # the files make_videos writes that sample() keeps


def index_frame(index: int, width: int = 64, height: int = 64) -> np.ndarray:
    """A picture whose 4x4 grid of blocks spells `index` in binary (row-major, most significant first)."""
    pixels = np.full((height, width, 3), 40, np.uint8)
    bits = [(index >> (15 - b)) & 1 for b in range(16)]
    for b, bit in enumerate(bits):
        y, x = divmod(b, 4)
        pixels[y * 16 : y * 16 + 16, x * 16 : x * 16 + 16] = 235 if bit else 16
    pixels[:6, :6] = [255, 0, 0]  # a red corner marks "up-left" for rotation checks
    return pixels


def read_index(frame: np.ndarray) -> int:
    """Inverse of `index_frame` for a square picture of any size."""
    h, w = frame.shape[:2]
    gray = frame.astype(float).mean(-1)
    value = 0
    for b in range(16):
        y, x = divmod(b, 4)
        value = value * 2 + int(gray[int((y + 0.5) * h / 4), int((x + 0.5) * w / 4)] > 128)
    return value


def write_video(path: Path, times: list[float], *, width: int = 64, height: int = 64, faststart: bool = False) -> list[Fraction]:
    """Encode one indexed frame at each time (seconds); returns the exact timestamps written."""
    options = {"movflags": "faststart"} if faststart else {}
    stamps = [round(Fraction(t) / TIME_BASE) * TIME_BASE for t in times]
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        stream.options = {"crf": "8", "preset": "ultrafast"}
        for i, when in enumerate(stamps):
            frame = av.VideoFrame.from_ndarray(index_frame(i, width, height), format="rgb24")
            frame.pts = int(when / TIME_BASE)
            frame.time_base = TIME_BASE
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return stamps


def constant_rate(fps: Fraction, seconds: float) -> list[float]:
    count = int(seconds * fps)
    return [Fraction(i) / fps for i in range(count)]


def variable_rate(seconds: float, seed: int = 0) -> list[Fraction]:
    rng = np.random.default_rng(seed)
    times, t = [], Fraction(0)
    while t < seconds:
        times.append(t)
        t += Fraction(int(rng.integers(10, 160)), 1000)  # gaps of 10 to 160 ms
    return times


def rotate(src: Path, dst: Path, degrees: int) -> None:
    """Copy `src` with a display matrix rotating it `degrees` counter-clockwise (no re-encoding)."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-display_rotation", str(degrees), "-i", str(src),
                    "-c", "copy", str(dst)], check=True)


def ffmpeg_frames(path: Path, width: int, height: int) -> np.ndarray:
    """All frames as ffmpeg itself shows them (autorotation on), rgb24 `[N, height, width, 3]`."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    raw = subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def make_videos(root: Path) -> dict[str, list[Fraction] | None]:
    """The acceptance set: 24, 25 and 29.97 fps, a VFR one, a rotated one, a 1-second one, a truncated and a
    corrupt file. Returns each file's frame timestamps (None for the broken ones)."""
    root.mkdir(parents=True, exist_ok=True)
    stamps = {
        "fps24": write_video(root / "fps24.mp4", constant_rate(Fraction(24), 4)),
        "fps25": write_video(root / "fps25.mp4", constant_rate(Fraction(25), 4)),
        "fps2997": write_video(root / "fps2997.mp4", constant_rate(Fraction(30000, 1001), 4)),
        "vfr": write_video(root / "vfr.mp4", variable_rate(4)),
        "short": write_video(root / "short.mp4", constant_rate(Fraction(25), 1)),
    }
    upright = root.parent / "upright-source.mp4"
    stamps["rotated"] = write_video(upright, constant_rate(Fraction(25), 4))
    rotate(upright, root / "rotated.mp4", 90)
    full = root.parent / "full-source.mp4"
    write_video(full, constant_rate(Fraction(25), 4), faststart=True)  # index first, then the frames
    data = full.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) * 3 // 4])
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    stamps["truncated"] = stamps["corrupt"] = None
    return stamps
