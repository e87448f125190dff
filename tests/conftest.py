import pytest
import torch
from PIL import Image

from reasondiff.models import tiny_wan


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model fails the test: a fault the command can know before must be reported before that."""
    import reasondiff.pipelines.loading as loading

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the fault was reported")

    monkeypatch.setattr(loading, "load_pipeline", refuse)


@pytest.fixture
def one_thread():
    """Tiny models are dominated by per-op overhead; on a shared 2-core runner one thread is faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

@pytest.fixture
def wan_components():
    return tiny_wan.wan_components(seed=0)


@pytest.fixture
def condition_image():
    """A 64x64 image with structure (a gradient and a square), so the VAE sees more than a flat colour."""
    x = torch.linspace(0, 255, 64).round().to(torch.uint8)
    pixels = torch.stack([x[None, :].expand(64, 64), x[:, None].expand(64, 64), torch.full((64, 64), 90)], -1)
    pixels[20:40, 20:40] = torch.tensor([200, 30, 30], dtype=torch.uint8)
    return Image.fromarray(pixels.to(torch.uint8).numpy())
