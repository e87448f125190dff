import pytest

from reasondiff.data.toy import toy_clips
from reasondiff.data import write_cache
from reasondiff.models import tiny_wan


@pytest.fixture(scope="session")
def toy_cache(tmp_path_factory):
    """8 toy clips of 9 frames at 32x32, cached with the tiny components and whole condition videos."""
    out = tmp_path_factory.mktemp("toy_cache")
    c = tiny_wan.wan_components(seed=0)
    write_cache(out, toy_clips(8, num_frames=9, size=32, seed=0), vae=c["vae"], text_encoder=c["text_encoder"],
                tokenizer=c["tokenizer"], image_encoder=c["image_encoder"], image_processor=c["image_processor"],
                anchors_per_clip=3, seed=0, progress=False, condition_videos=True)
    return out
