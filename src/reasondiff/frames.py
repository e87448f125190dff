"""Pixel-frame <-> latent-frame bookkeeping for Wan's causal video VAE.

The narrator speaks in 1-based pixel positions ("the image is frame 81 of 81"); the VAE and the DiT
work on latent frames. Wan's VAE compresses time by 4 causally: latent frame 0 holds pixel frame 0
alone, latent frame k >= 1 holds pixel frames 4k-3 .. 4k (0-based). Every module that moves between
the two worlds goes through these helpers so the mapping lives in exactly one place.
"""

from __future__ import annotations

TEMPORAL_COMPRESSION = 4


def check_num_frames(num_frames: int, temporal_compression: int = TEMPORAL_COMPRESSION) -> int:
    """Return `num_frames` if the VAE can encode it (4k+1, k >= 0), else raise a ValueError saying why."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int):
        raise TypeError(f"num_frames must be an int, got {type(num_frames).__name__}")
    if num_frames < 1:
        raise ValueError(
            f"num_frames={num_frames}: a video needs at least 1 frame, and Wan's causal VAE takes "
            f"{temporal_compression}k+1 frames (e.g. 17, 33, 81)"
        )
    if (num_frames - 1) % temporal_compression != 0:
        below = (num_frames - 1) // temporal_compression * temporal_compression + 1
        above = below + temporal_compression
        raise ValueError(
            f"num_frames={num_frames} is not of the form {temporal_compression}k+1 required by Wan's causal VAE "
            f"(e.g. 17, 33, 81); the nearest valid values are {below} and {above}"
        )
    return num_frames


def num_latent_frames(num_frames: int, temporal_compression: int = TEMPORAL_COMPRESSION) -> int:
    """Number of latent frames the VAE produces for `num_frames` pixel frames (81 -> 21)."""
    check_num_frames(num_frames, temporal_compression)
    return (num_frames - 1) // temporal_compression + 1


def pixel_to_latent_index(position: int, num_frames: int, temporal_compression: int = TEMPORAL_COMPRESSION) -> int:
    """Latent index holding 1-based pixel `position` of a `num_frames` video (81 frames: 1->0, 2..5->1, 81->20)."""
    check_num_frames(num_frames, temporal_compression)
    if isinstance(position, bool) or not isinstance(position, int):
        raise TypeError(f"position must be an int, got {type(position).__name__}")
    if not 1 <= position <= num_frames:
        raise ValueError(f"position {position} is outside the video: positions are 1-based, 1..{num_frames}")
    return 0 if position == 1 else (position - 2) // temporal_compression + 1


def latent_to_pixel_positions(
    latent_index: int, num_frames: int, temporal_compression: int = TEMPORAL_COMPRESSION
) -> list[int]:
    """The 1-based pixel positions that latent frame `latent_index` holds (0 -> [1], 1 -> [2, 3, 4, 5])."""
    n = num_latent_frames(num_frames, temporal_compression)
    if not 0 <= latent_index < n:
        raise ValueError(f"latent index {latent_index} is outside 0..{n - 1} for a {num_frames}-frame video")
    if latent_index == 0:
        return [1]
    first = temporal_compression * (latent_index - 1) + 2
    return list(range(first, first + temporal_compression))


def group_by_latent_frame(items: list, temporal_compression: int = TEMPORAL_COMPRESSION) -> list[tuple]:
    """Per-pixel-frame items (descriptions, caption ids, ...) grouped by the latent frame that holds them."""
    num_frames = len(items)
    return [
        tuple(items[p - 1] for p in latent_to_pixel_positions(k, num_frames, temporal_compression))
        for k in range(num_latent_frames(num_frames, temporal_compression))
    ]
