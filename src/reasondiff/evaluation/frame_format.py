"""One frame format for every metric: uint8 RGB `[F, H, W, 3]`, what VBench reads from an mp4.

The pipeline returns floats in [0, 1]; videos on disk decode to uint8. Metrics convert once, here, so a
score does not depend on which of the two a caller happened to hold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image


def to_uint8_frames(video) -> np.ndarray:
    """`video` as uint8 `[F, H, W, 3]`: a float array in [0, 1], a uint8 array, or a list of PIL images / arrays."""
    if isinstance(video, (list, tuple)):
        if not video:
            raise ValueError("the video has no frames")
        video = np.stack([np.asarray(f.convert("RGB") if isinstance(f, PIL.Image.Image) else f) for f in video])
    video = np.asarray(video)
    if video.ndim == 5 and video.shape[0] == 1:  # the pipeline's batch of one
        video = video[0]
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected frames shaped [F, H, W, 3], got {list(video.shape)}")
    if video.shape[0] == 0:
        raise ValueError("the video has no frames")
    if video.dtype == np.uint8:
        return video
    if np.issubdtype(video.dtype, np.floating):
        if not np.isfinite(video).all():
            raise ValueError("the video holds NaN or infinite values")
        return (np.clip(video, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    raise ValueError(f"frames must be uint8 or floats in [0, 1], got {video.dtype}")


def count_frames(path: str | Path) -> int:
    """The number of frames of the video at `path`, from its header when it says (mp4 does), else by decoding;
    ValueError with one line naming the file when it is no readable video (empty, cut short, not a video)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"video file not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} holds no video stream")
            stream = container.streams.video[0]
            return stream.frames or sum(1 for _ in container.decode(stream))
    except av.FFmpegError as err:
        raise ValueError(f"{path} is not a readable video ({getattr(err, 'strerror', None) or err})") from None


def read_video(path: str | Path) -> np.ndarray:
    """Decode an .mp4/.gif (imageio) into uint8 `[F, H, W, 3]`; ValueError with one line for a file that is no
    readable video (imageio's message carries ffmpeg's whole banner and log, about 30 lines)."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"video file not found: {path}")
    try:
        frames = iio.imread(path, index=None)
    except (OSError, RuntimeError, ValueError) as err:  # imageio-ffmpeg raises OSError; its plugins others
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path} is not a readable video ({first})") from None
    if frames.ndim == 3:  # a single frame
        frames = frames[None]
    return to_uint8_frames(frames[..., :3])


def resample_indices(num_source: int, num_target: int) -> list[int]:
    """For each of `num_target` frames, the 0-based index of the nearest source frame in time.

    First maps to first and last to last, the rule `Narration.resample` uses, so ground-truth captions of a
    16-frame clip line up with an 81-frame generation the same way a resampled narration does.
    """
    if num_source < 1 or num_target < 1:
        raise ValueError(f"frame counts must be positive, got {num_source} and {num_target}")
    if num_source == 1 or num_target == 1:
        return [0] * num_target
    return [round(k * (num_source - 1) / (num_target - 1)) for k in range(num_target)]
