import csv

import pytest
from synthetic import GOOD, make_videos


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory):
    """The synthetic video set (see synthetic.make_videos) and each file's true frame timestamps."""
    root = tmp_path_factory.mktemp("videos") / "videos"
    stamps = make_videos(root)
    return root, stamps


@pytest.fixture(scope="session")
def webvid_csv(video_dir):
    """A WebVid-style CSV over the good videos, with relative paths and captions in `name`."""
    root, _ = video_dir
    path = root.parent / "webvid.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["videoid", "path", "name"])
        for name in GOOD[:4]:
            writer.writerow([f"{name}_id", f"videos/{name}.mp4", f"a video at {name}"])
    return path


@pytest.fixture(scope="session")
def clips17(webvid_csv, tmp_path_factory):
    """4 sampled clips of 17 frames (4k+1, so the cache accepts them) at 32x32, from the CSV."""
    from reasondiff.data.sampling import sample_videos

    out = tmp_path_factory.mktemp("clips17") / "clips"
    sample_videos(webvid_csv, out, num_frames=17, interval=0.2, size=(32, 32), clips_per_shard=3, progress=False)
    return out


@pytest.fixture(scope="session")
def clips9(webvid_csv, tmp_path_factory):
    """4 small 9-frame clips (4k+1) at 16x16: enough for the cache's shapes, cheap for the tiny VAE on CPU."""
    from reasondiff.data.sampling import sample_videos

    out = tmp_path_factory.mktemp("clips9") / "clips"
    sample_videos(webvid_csv, out, num_frames=9, interval=0.2, size=(16, 16), clips_per_shard=3, progress=False)
    return out
