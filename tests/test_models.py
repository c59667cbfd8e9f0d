"""Tests of raw_synth.models: SSDNet blocks, network, presets and test-time helpers."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from raw_synth import cfa
from raw_synth.errors import RawSynthError
from raw_synth.models import (
    PRESETS,
    ContextFusionAttention,
    Downsample,
    GatedFeedForward,
    LayerNorm2d,
    SSDNet,
    SSDNetConfig,
    TransformerBlock,
    Upsample,
    create_model,
    get_config,
    list_models,
    pad_to_multiple,
    resampling_loss,
    self_ensemble_x8,
)
from raw_synth.models import ssdnet as ssdnet_module
from raw_synth.models.blocks import PointwiseConv, pointwise

torch.set_num_threads(2)


def _randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter non-trivial random values (temperatures, norms and biases included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.3 + (1.0 if param.ndim == 1 else 0.0))
    return module


def _tiny(**overrides: object) -> SSDNet:
    torch.manual_seed(0)
    return create_model("tiny", **overrides)


# --------------------------------------------------------------------------------------------
# Building blocks against direct re-statements of facts 1.2 / 1.6


@pytest.mark.parametrize("kind", ["BiasFree", "WithBias"])
def test_layer_norm_matches_definition(kind: str) -> None:
    x = torch.randn(2, 5, 4, 3) * 3 + 1
    norm = _randomise(LayerNorm2d(5, kind))
    var = x.var(dim=1, keepdim=True, unbiased=False)
    w = norm.weight.view(1, -1, 1, 1)
    if kind == "BiasFree":
        expected = x / torch.sqrt(var + 1e-5) * w
        assert norm.bias is None
    else:
        expected = (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(var + 1e-5) * w + norm.bias.view(1, -1, 1, 1)
        torch.testing.assert_close(
            norm(x), F.layer_norm(x.permute(0, 2, 3, 1), (5,), norm.weight, norm.bias).permute(0, 3, 1, 2)
        )
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)


def test_layer_norm_rejects_unknown_kind() -> None:
    with pytest.raises(RawSynthError, match="layernorm: unknown kind 'Batch'"):
        LayerNorm2d(4, "Batch")  # type: ignore[arg-type]


@pytest.mark.parametrize("bias", [False, True])
def test_pointwise_equals_conv2d(bias: bool) -> None:
    conv = _randomise(PointwiseConv(6, 10, bias=bias))
    x = torch.randn(3, 6, 5, 7)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, conv.bias), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pointwise(x, conv.weight.view(10, 6), conv.bias), F.conv2d(x, conv.weight, conv.bias))
    assert set(conv.state_dict()) == ({"weight", "bias"} if bias else {"weight"})
    assert conv.weight.shape == (10, 6, 1, 1)


def _reference_attention(m: ContextFusionAttention, y: torch.Tensor) -> torch.Tensor:
    """Facts 1.2 written out literally: conv2d, F.normalize, explicit w_c * V and concat."""
    b, c, h, w = y.shape
    qkv = F.conv2d(F.conv2d(y, m.qkv.weight, m.qkv.bias), m.qkv_dwconv.weight, m.qkv_dwconv.bias,
                   padding=1, groups=3 * c)
    q, k, v = qkv.chunk(3, dim=1)
    conv = F.conv2d(y, m.conv_branch.weight, m.conv_branch.bias, padding=m.conv_branch.padding, groups=c)
    gap = conv.mean(dim=(2, 3), keepdim=True)
    w_c = torch.sigmoid(F.conv2d(F.gelu(F.conv2d(gap, m.channel_weight[1].weight)), m.channel_weight[3].weight))
    v = v * w_c
    heads = m.heads
    q = F.normalize(q.reshape(b, heads, c // heads, h * w), dim=-1)
    k = F.normalize(k.reshape(b, heads, c // heads, h * w), dim=-1)
    v = v.reshape(b, heads, c // heads, h * w)
    attn = torch.softmax(q @ k.transpose(-2, -1) * m.temperature, dim=-1)
    out = (attn @ v).reshape(b, c, h, w)
    sw = m.spatial_weight
    w_s = torch.sigmoid(F.conv2d(F.gelu(F.conv2d(out, sw[0].weight, sw[0].bias)), sw[2].weight, sw[2].bias))
    return F.conv2d(torch.cat([w_s * conv, out], dim=1), m.fuse.weight, m.fuse.bias)


@pytest.mark.parametrize("heads,bias", [(1, False), (2, False), (4, True)])
def test_attention_matches_reference(heads: int, bias: bool) -> None:
    m = _randomise(ContextFusionAttention(8, heads, bias=bias, kernel_size=7), seed=heads)
    y = torch.randn(2, 8, 12, 10)
    torch.testing.assert_close(m(y), _reference_attention(m, y), rtol=1e-4, atol=1e-5)


def test_attention_parameter_layout() -> None:
    m = ContextFusionAttention(16, 4)
    assert m.temperature.shape == (4, 1, 1) and bool((m.temperature == 1).all())
    assert m.conv_branch.bias is not None and m.conv_branch.kernel_size == (7, 7) and m.conv_branch.groups == 16
    assert m.qkv.bias is None and m.qkv_dwconv.bias is None and m.fuse.bias is None
    assert m.channel_weight[1].bias is None and m.channel_weight[3].bias is None
    assert m.fuse.weight.shape == (16, 32, 1, 1)
    # 3C^2 + 27C + 49C + C + 4C^2 (two weights) + 2C^2 (fusion) + heads
    assert sum(p.numel() for p in m.parameters()) == 9 * 16 * 16 + 77 * 16 + 4


def test_attention_rejects_bad_heads() -> None:
    with pytest.raises(RawSynthError, match="heads: 3 heads do not divide 8 channels"):
        ContextFusionAttention(8, 3)


@pytest.mark.parametrize("kind", ["gdfn", "simple"])
def test_feed_forward_matches_reference(kind: str) -> None:
    m = _randomise(GatedFeedForward(6, 2.66, bias=False, kind=kind))  # type: ignore[arg-type]
    x = torch.randn(2, 6, 9, 7)
    hidden = int(6 * 2.66)
    assert m.hidden == hidden == 15
    expanded = F.conv2d(x, m.project_in.weight)
    if kind == "gdfn":
        gate, value = F.conv2d(expanded, m.dwconv.weight, padding=1, groups=2 * hidden).chunk(2, dim=1)
    else:
        gate, value = expanded.chunk(2, dim=1)
        gate = F.conv2d(gate, m.dwconv.weight, padding=1, groups=hidden)
    expected = F.conv2d(F.gelu(gate) * value, m.project_out.weight)
    torch.testing.assert_close(m(x), expected, rtol=1e-5, atol=1e-5)
    assert m.dwconv.groups == (2 * hidden if kind == "gdfn" else hidden)


def test_feed_forward_rejects_unknown_kind() -> None:
    with pytest.raises(RawSynthError, match="ffn: unknown kind 'mlp'"):
        GatedFeedForward(8, kind="mlp")  # type: ignore[arg-type]


def test_transformer_block_is_prenorm_residual() -> None:
    block = _randomise(TransformerBlock(8, 2, layernorm="WithBias"))
    x = torch.randn(1, 8, 6, 6)
    mid = x + block.attn(block.norm1(x))
    torch.testing.assert_close(block(x), mid + block.ffn(block.norm2(mid)))
    with torch.no_grad():
        block.attn.fuse.weight.zero_()
        block.ffn.project_out.weight.zero_()
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("layernorm,ffn", [("BiasFree", "gdfn"), ("WithBias", "simple")])
def test_no_grad_fast_path_matches_autograd_path(layernorm: str, ffn: str) -> None:
    # Under no_grad the blocks reuse fresh buffers in place; results and inputs must not change.
    block = _randomise(TransformerBlock(8, 2, bias=True, layernorm=layernorm, ffn=ffn), seed=4)  # type: ignore[arg-type]
    x = torch.randn(2, 8, 6, 10)
    before = x.clone()
    with_grad = block(x)
    with torch.no_grad():
        without = block(x)
    with torch.inference_mode():
        inference = block(x)
    torch.testing.assert_close(without, with_grad.detach())
    torch.testing.assert_close(inference, with_grad.detach())
    assert torch.equal(x, before)


def test_down_and_up_sample() -> None:
    x = torch.randn(2, 8, 6, 10)
    down = Downsample(8)
    assert down(x).shape == (2, 16, 3, 5)
    torch.testing.assert_close(down(x), F.pixel_unshuffle(F.conv2d(x, down.body[0].weight, padding=1), 2))
    up = Upsample(8)
    assert up(x).shape == (2, 4, 12, 20)
    assert up.body[0].weight.shape == (16, 8, 3, 3)
    with pytest.raises(RawSynthError, match="even channel count, got 5"):
        Downsample(5)


# --------------------------------------------------------------------------------------------
# SSDNet


@pytest.mark.parametrize("size", [(64, 64), (48, 80), (96, 32)])
def test_forward_shapes_and_range(size: tuple[int, int]) -> None:
    model = _tiny(dec_blocks=(1, 1, 1), refinement_blocks=1)
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = model(x)
    h, w = size
    assert set(out) == {"mu", "sigma"}
    assert out["mu"].shape == (2, 4, h // 2, w // 2)
    assert out["sigma"] is not None and out["sigma"].shape == (2, 4, h // 2, w // 2)
    for value in out.values():
        assert value.dtype == torch.float32
        assert float(value.min()) >= 0.0 and float(value.max()) <= 1.0


def test_sigma_can_be_skipped_or_absent() -> None:
    x = torch.rand(1, 3, 16, 16)
    model = _tiny()
    with torch.no_grad():
        full = model(x)
        assert model(x, with_sigma=False)["sigma"] is None
        torch.testing.assert_close(model(x, with_sigma=False)["mu"], full["mu"])
    headless = _tiny(sigma_head=False)
    assert headless.sigma_head is None
    assert headless.num_parameters() < model.num_parameters()
    with torch.no_grad():
        assert headless(x)["sigma"] is None


def test_mean_head_packs_an_rggb_mosaic() -> None:
    model = _randomise(_tiny(), seed=3)
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        rgb = model.refined_rgb(x)
        mosaic = model.mean_head[0](rgb)[:, 0]  # (B, H, W) one-channel full-resolution mosaic
        expected = cfa.pack(mosaic, "RGGB").clamp(0, 1)
        torch.testing.assert_close(model(x, with_sigma=False)["mu"], expected)
    assert mosaic.shape == (1, 16, 24)


def test_output_is_rgb_residual_path() -> None:
    model = _tiny()
    with torch.no_grad():
        for param in model.to_rgb.parameters():
            param.zero_()  # gelu(0) = 0: the refined RGB is then exactly the input
        x = torch.rand(1, 3, 16, 16)
        torch.testing.assert_close(model.refined_rgb(x), x)
        expected = F.pixel_unshuffle(F.conv2d(x, model.mean_head[0].weight, padding=1), 2).clamp(0, 1)
        torch.testing.assert_close(model(x)["mu"], expected)


def test_forward_rejects_bad_inputs() -> None:
    model = _tiny()
    with pytest.raises(RawSynthError, match=r"multiples of 8 for SSDNet.forward, got 20x16"):
        model(torch.rand(1, 3, 20, 16))
    with pytest.raises(RawSynthError, match=r"x: expected RGB of shape \(B, 3, H, W\), got \(1, 4, 16, 16\)"):
        model(torch.rand(1, 4, 16, 16))
    with pytest.raises(RawSynthError, match="expected a float tensor"):
        model(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(RawSynthError, match="height and width must be even for a Bayer mosaic, got 17x16"):
        model.predict(torch.rand(1, 3, 17, 16))
    with pytest.raises(RawSynthError, match="multiple must be a positive multiple of 8"):
        model.predict(torch.rand(1, 3, 16, 16), multiple=12)


@pytest.mark.parametrize("size", [(50, 34), (2, 6), (16, 32)])
def test_predict_pads_and_crops(size: tuple[int, int]) -> None:
    model = _tiny().eval()
    x = torch.rand(1, 3, *size)
    before = x.clone()
    with torch.no_grad():
        out = model.predict(x, with_sigma=True)
        padded, _ = pad_to_multiple(x, 16)
        direct = model(padded)
    h, w = size
    assert out["mu"].shape == (1, 4, h // 2, w // 2) and out["sigma"].shape == (1, 4, h // 2, w // 2)
    torch.testing.assert_close(out["mu"], direct["mu"][..., : h // 2, : w // 2])
    torch.testing.assert_close(out["sigma"], direct["sigma"][..., : h // 2, : w // 2])
    assert torch.equal(x, before)


def test_pad_to_multiple_reflects_bottom_right() -> None:
    x = torch.arange(2 * 1 * 6 * 20, dtype=torch.float32).reshape(2, 1, 6, 20)
    padded, size = pad_to_multiple(x, 16)
    assert size == (6, 20) and padded.shape == (2, 1, 16, 32)
    torch.testing.assert_close(padded[..., :6, :20], x)
    torch.testing.assert_close(padded[..., :6, 20:32], F.pad(x, (0, 12, 0, 0), mode="reflect")[..., 20:])
    # 10 rows of padding do not fit a reflection of 6 rows: edge replication instead
    torch.testing.assert_close(padded[..., 6:, :20], x[..., 5:6, :].expand(2, 1, 10, 20))
    same, _ = pad_to_multiple(x[..., :16, :16].contiguous(), 2)
    assert same.shape == (2, 1, 6, 16)
    with pytest.raises(RawSynthError, match="mode must be 'reflect' or 'replicate'"):
        pad_to_multiple(x, 16, mode="circular")


def test_batch_items_are_independent() -> None:
    model = _randomise(_tiny(heads=(2, 2, 2, 4)), seed=5).eval()
    x = torch.rand(3, 3, 16, 24)
    with torch.no_grad():
        batched = model(x)
        single = model(x[1:2])
    torch.testing.assert_close(batched["mu"][1:2], single["mu"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batched["sigma"][1:2], single["sigma"], rtol=1e-4, atol=1e-5)


def test_gradients_reach_every_parameter() -> None:
    model = _tiny(dec_blocks=(1, 1, 1), refinement_blocks=1)
    x = torch.rand(2, 3, 16, 16)
    gt = torch.rand(2, 4, 8, 8) * 0.5 + 0.25
    out = model(x)
    loss = resampling_loss(out["mu"], out["sigma"], gt, generator=torch.Generator().manual_seed(0))
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []
    assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())
    assert float(model.embed.weight.grad.abs().sum()) > 0
    assert float(model.sigma_head[0].weight.grad.abs().sum()) > 0


def test_deterministic_construction_and_inference() -> None:
    a, b = _tiny(), _tiny()
    for (name_a, pa), (name_b, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert name_a == name_b and torch.equal(pa, pb)
    x = torch.rand(1, 3, 24, 16)
    with torch.no_grad():
        assert torch.equal(a(x)["mu"], b(x)["mu"])
        assert torch.equal(a(x)["sigma"], a(x)["sigma"])


def test_state_dict_round_trip_through_config() -> None:
    model = _tiny(dim=6, heads=(1, 1, 1, 1))
    clone = SSDNet(SSDNetConfig.from_dict(json.loads(json.dumps(model.config.to_dict()))))
    clone.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(clone(x)["mu"], model(x)["mu"])


# --------------------------------------------------------------------------------------------
# Presets and registry


def _count_on_meta(name: str, **overrides: object) -> int:
    with torch.device("meta"):
        return create_model(name, **overrides).num_parameters()


def test_paper_preset_parameter_count() -> None:
    total = _count_on_meta("ssdnet-paper")
    assert 35_880_000 <= total <= 36_600_000  # facts 1.1: 36.24M within 1%
    mean_path = _count_on_meta("ssdnet-paper", sigma_head=False)
    assert abs(mean_path - 35.56e6) / 35.56e6 < 0.01
    assert abs((total - mean_path) - 0.68e6) / 0.68e6 < 0.01


def test_paper_preset_layout() -> None:
    cfg = get_config("ssdnet-paper")
    assert (cfg.dim, cfg.enc_blocks, cfg.dec_blocks, cfg.refinement_blocks) == (48, (4, 6, 6, 8), (4, 6, 6), 4)
    assert ((cfg.heads, cfg.ffn_factor, cfg.bias, cfg.layernorm, cfg.ffn)
            == ((1, 2, 4, 8), 2.66, False, "BiasFree", "gdfn"))
    with torch.device("meta"):
        model = create_model("ssdnet-paper")
    assert [len(s) for s in (model.enc1, model.enc2, model.enc3, model.latent)] == [4, 6, 6, 8]
    assert [len(s) for s in (model.dec3, model.dec2, model.dec1, model.refinement)] == [6, 6, 4, 4]
    assert model.dec1[0].attn.dim == 96 and model.dec1[0].attn.heads == 1
    assert model.latent[0].attn.dim == 384 and model.latent[0].attn.heads == 8
    assert model.reduce3.weight.shape == (192, 384, 1, 1) and model.reduce2.weight.shape == (96, 192, 1, 1)
    assert model.sigma_head is not None and sum(isinstance(m, TransformerBlock) for m in model.sigma_head) == 4


def test_presets_build_and_run() -> None:
    assert list_models(kind="ssdnet-isp") == ["small", "ssdnet-paper", "tiny"]
    assert set(PRESETS) == set(list_models(kind="ssdnet-isp"))
    small = _count_on_meta("small")
    tiny = _count_on_meta("tiny")
    assert tiny < small < _count_on_meta("ssdnet-paper")
    with torch.no_grad():
        assert create_model("small")(torch.rand(1, 3, 16, 16))["mu"].shape == (1, 4, 8, 8)


def test_create_model_errors() -> None:
    with pytest.raises(RawSynthError, match=r"unknown model 'huge': expected one of denoiser-paper, denoiser-tiny, "
                                            r"small, ssdnet-paper, tiny$"):
        create_model("huge")
    with pytest.raises(RawSynthError, match=r"model 'tiny': unknown override\(s\) depth; known: "):
        create_model("tiny", depth=3)
    with pytest.raises(RawSynthError, match="dim must be even"):
        create_model("tiny", dim=7)
    with pytest.raises(RawSynthError, match="heads: 3 heads do not divide the 8 channels of level 1"):
        create_model("tiny", dim=8, heads=(3, 1, 1, 1))
    with pytest.raises(RawSynthError, match="enc_blocks must be a sequence of 4 integers"):
        create_model("tiny", enc_blocks=(1, 1, 1))
    with pytest.raises(RawSynthError, match="ffn must be one of gdfn, simple"):
        create_model("tiny", ffn="mlp")
    with pytest.raises(RawSynthError, match="ffn_factor must be a positive number, got nan"):
        create_model("tiny", ffn_factor=float("nan"))
    with pytest.raises(RawSynthError, match="sigma_head must be a boolean, got 'yes'"):
        create_model("tiny", sigma_head="yes")


def test_overrides_apply() -> None:
    model = create_model("tiny", dim=6, ffn="gdfn", layernorm="WithBias", enc_blocks=[2, 1, 1, 1])
    assert model.config.dim == 6 and model.config.enc_blocks == (2, 1, 1, 1)
    assert len(model.enc1) == 2 and model.enc1[0].norm1.bias is not None
    assert PRESETS["tiny"].enc_blocks != (2, 1, 1, 1)  # the preset itself is untouched


def test_config_dict_round_trip() -> None:
    cfg = get_config("small", ffn="simple")
    data = cfg.to_dict()
    assert data["enc_blocks"] == [2, 3, 3, 4] and json.loads(json.dumps(data)) == data
    assert SSDNetConfig.from_dict(data) == cfg
    with pytest.raises(RawSynthError, match=r"SSDNet config: unknown field\(s\) width"):
        SSDNetConfig.from_dict({**data, "width": 3})
    with pytest.raises(RawSynthError, match="SSDNet config must be a dict, got list"):
        SSDNetConfig.from_dict([])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Test-time helpers


def test_test_resample_is_mean_of_draws() -> None:
    model = _tiny().eval()
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        got = ssdnet_module.test_resample(model, x, n_samples=5, generator=torch.Generator().manual_seed(7),
                                          clamp=False)
        out = model.predict(x, with_sigma=True)
    gen = torch.Generator().manual_seed(7)
    draws = [out["mu"] + out["sigma"] * torch.randn(out["mu"].shape, generator=gen) for _ in range(5)]
    torch.testing.assert_close(got, torch.stack(draws).mean(dim=0))
    with torch.no_grad():
        clamped = ssdnet_module.test_resample(model, x, n_samples=5, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(clamped, got.clamp(0, 1))


def test_test_resample_errors() -> None:
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(RawSynthError, match="needs a variance head"):
        ssdnet_module.test_resample(_tiny(sigma_head=False), x, n_samples=2)
    with pytest.raises(RawSynthError, match="n_samples must be a positive integer, got 0"):
        ssdnet_module.test_resample(_tiny(), x, n_samples=0)


def _cfa_sampler(rgb: torch.Tensor) -> torch.Tensor:
    """A predictor that commutes with flips/transposes: RGGB sampling of the input grid."""
    return cfa.pack(cfa.mosaic(rgb, "RGGB"), "RGGB")


@pytest.mark.parametrize("size", [(8, 12), (6, 6), (2, 4)])
def test_self_ensemble_of_equivariant_fn_is_exact(size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size)
    seen: list[tuple[int, int]] = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape[-2:]))
        return _cfa_sampler(t)

    torch.testing.assert_close(self_ensemble_x8(fn, x), _cfa_sampler(x))
    h, w = size
    assert len(seen) == 8 and all(s[0] % 2 == 0 and s[1] % 2 == 0 for s in seen)
    assert set(seen) <= {(h, w), (h + 2, w), (h, w + 2), (h + 2, w + 2), (w, h), (w + 2, h), (w, h + 2), (w + 2, h + 2)}


def test_self_ensemble_of_equivariant_blur_is_exact() -> None:
    # A D4-symmetric 3x3 blur with reflect borders, then RGGB sampling, also commutes with the
    # eight transforms, including the one-pixel reflect padding the ensemble adds.
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16

    def fn(rgb: torch.Tensor) -> torch.Tensor:
        blurred = F.conv2d(F.pad(rgb, (1, 1, 1, 1), mode="reflect"), kernel.expand(3, 1, 3, 3), groups=3)
        return _cfa_sampler(blurred)

    x = torch.rand(2, 3, 10, 14)
    torch.testing.assert_close(self_ensemble_x8(fn, x), fn(x), rtol=1e-5, atol=1e-6)


def test_naive_flip_ensemble_would_break_bayer_phase() -> None:
    # Guard for the test above: without the phase fix a horizontal flip puts G values on R sites.
    x = torch.rand(1, 3, 8, 8)
    naive = cfa.pack(cfa.unpack(_cfa_sampler(x.flip(-1)), "RGGB").flip(-1), "RGGB")
    assert not torch.allclose(naive, _cfa_sampler(x))
    torch.testing.assert_close(naive[:, 0], x[:, 1, 0::2, 0::2])  # R plane now holds green


def test_self_ensemble_with_model_and_errors() -> None:
    model = _tiny().eval()
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        out = self_ensemble_x8(lambda t: model.predict(t)["mu"], x)
    assert out.shape == (1, 4, 8, 12)
    with pytest.raises(RawSynthError, match="fn: expected a packed output of shape"):
        self_ensemble_x8(lambda t: t, x)
    with pytest.raises(RawSynthError, match="must be even for a Bayer mosaic, got 15x24"):
        self_ensemble_x8(_cfa_sampler, torch.rand(1, 3, 15, 24))
