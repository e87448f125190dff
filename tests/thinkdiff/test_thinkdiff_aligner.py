import pytest
import torch
import torch.nn.functional as F

from reasondiff.thinkdiff import Aligner, tiny


def test_rmsnorm_weight_equals_the_t5_encoders_final_norm_at_init():
    t5 = tiny.t5(0, encoder_norm_scale=0.1)
    aligner = Aligner(in_dim=24, out_dim=tiny.T5_DIM).init_norm_from(t5)
    source = t5.encoder.final_layer_norm
    assert torch.equal(aligner.norm.weight, source.weight)
    assert aligner.norm.eps == source.variance_epsilon
    assert not torch.allclose(aligner.norm.weight, torch.ones_like(aligner.norm.weight))  # not the default init
    # a copy, not a shared parameter: training the aligner must not move the frozen T5
    with torch.no_grad():
        aligner.norm.weight.mul_(2)
    assert torch.equal(source.weight, t5.encoder.final_layer_norm.weight) and not torch.equal(
        aligner.norm.weight, source.weight)


@pytest.mark.parametrize("build", [lambda: tiny.umt5(0).get_encoder(), lambda: tiny.wan_components(0)["text_encoder"]])
def test_from_text_encoder_reads_umt5_and_encoder_only_models(build):
    encoder = build()
    aligner = Aligner.from_text_encoder(encoder, in_dim=16)
    assert aligner.config.out_dim == encoder.config.d_model
    norm = encoder.final_layer_norm if hasattr(encoder, "final_layer_norm") else encoder.encoder.final_layer_norm
    assert torch.equal(aligner.norm.weight, norm.weight)


def test_forward_is_linear_gelu_linear_rmsnorm_eq1():
    torch.manual_seed(0)
    aligner = Aligner(in_dim=8, out_dim=6, hidden_dim=10)
    with torch.no_grad():
        aligner.norm.weight.copy_(torch.linspace(0.1, 0.6, 6))
    x = torch.randn(2, 5, 8)
    h = F.linear(F.gelu(F.linear(x, aligner.linear_1.weight, aligner.linear_1.bias)), aligner.linear_2.weight,
                 aligner.linear_2.bias)
    expected = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + aligner.norm.eps) * aligner.norm.weight
    torch.testing.assert_close(aligner(x), expected)
    # the output scale is the norm's, whatever the input's scale (the point of §3.2)
    torch.testing.assert_close(aligner(1000 * x).pow(2).mean(-1).sqrt().mean(),
                               aligner(x).pow(2).mean(-1).sqrt().mean(), rtol=0.2, atol=0)


def test_without_norm_the_output_is_unnormalised():
    aligner = Aligner(in_dim=8, out_dim=6, norm_type="none")
    x = torch.randn(3, 8)
    torch.testing.assert_close(aligner(x), aligner.linear_2(F.gelu(aligner.linear_1(x))))
    with pytest.raises(ValueError, match="no RMSNorm"):
        aligner.init_norm_from(tiny.t5(0))
    with pytest.raises(ValueError, match="norm_type"):
        Aligner(in_dim=8, out_dim=6, norm_type="layer")


def test_width_mismatch_is_refused():
    with pytest.raises(ValueError, match="width"):
        Aligner(in_dim=8, out_dim=7).init_norm_from(tiny.t5(0))


def test_save_and_load_round_trip_as_safetensors(tmp_path):
    aligner = Aligner(in_dim=8, out_dim=tiny.T5_DIM).init_norm_from(tiny.t5(0, encoder_norm_scale=0.1))
    aligner.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    loaded = Aligner.from_pretrained(tmp_path)
    x = torch.randn(2, 3, 8)
    assert torch.equal(loaded(x), aligner(x))
    assert loaded.norm.eps == aligner.norm.eps
