"""Tests of denoise.models and denoise.inference: shapes, modes, presets, checkpoints, tiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import denoise
from denoise.inference import denoise_packed, load_denoiser, noise_variance
from denoise.models import DENOISER_PRESETS, DenoiserConfig, SSDNetDenoiser, create_denoiser, get_denoiser_config
from raw_synth.checkpoint import load_model, save_model
from raw_synth.errors import RawSynthError
from raw_synth.models import create_model

SMALL = dict(dim=4, enc_blocks=(1, 1, 1, 1), dec_blocks=(1, 1, 1), heads=(1, 1, 1, 1))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _randomise_head(model: SSDNetDenoiser) -> SSDNetDenoiser:
    torch.nn.init.normal_(model.output.weight, std=0.1)  # fresh models start as the identity
    return model


def test_blind_and_conditioned_shapes() -> None:
    torch.manual_seed(0)
    blind = create_denoiser("denoiser-tiny", **SMALL).eval()
    cond = create_denoiser("denoiser-tiny", conditioned=True, **SMALL).eval()
    assert torch.equal(blind(torch.ones(1, 4, 8, 8) * 0.3), torch.ones(1, 4, 8, 8) * 0.3)  # zero-initialised head
    _randomise_head(blind), _randomise_head(cond)
    assert blind.embed.in_channels == 4 and cond.embed.in_channels == 8
    assert blind.output.out_channels == 4 and cond.config.in_channels == 8
    x = torch.rand(2, 4, 16, 24)
    with torch.inference_mode():
        assert blind(x).shape == (2, 4, 16, 24)
        assert torch.equal(blind(x), blind(x, torch.rand_like(x)))  # a blind model ignores the map
        out = cond(x, 1e-3 * x + 1e-5)
        assert out.shape == (2, 4, 16, 24) and out.dtype == torch.float32
        assert not torch.equal(out, cond(x, 1e-2 * x + 1e-5))  # the map is used
        odd = torch.rand(1, 4, 13, 7)
        assert cond.predict(odd, odd * 1e-3).shape == (1, 4, 13, 7)
        assert blind.predict(odd).shape == (1, 4, 13, 7)


def test_residual_output_with_zero_head_is_identity() -> None:
    model = create_denoiser("denoiser-tiny", conditioned=True, **SMALL).eval()
    x = torch.rand(1, 4, 8, 8) * 1.2 - 0.1
    with torch.inference_mode():
        assert torch.equal(model(x, x), x)  # not clamped inside


def test_input_errors() -> None:
    cond = create_denoiser("denoiser-tiny", conditioned=True, **SMALL)
    x = torch.rand(1, 4, 16, 16)
    with pytest.raises(RawSynthError, match="variance: this denoiser is conditioned on the noise level"):
        cond(x)
    with pytest.raises(RawSynthError,
                       match=r"noisy: expected packed RAW of shape \(B, 4, h, w\), got \(1, 3, 16, 16\)"):
        cond(torch.rand(1, 3, 16, 16), x)
    with pytest.raises(RawSynthError, match=r"variance: shape \(1, 4, 8, 8\) differs from noisy \(1, 4, 16, 16\)"):
        cond(x, torch.rand(1, 4, 8, 8))
    with pytest.raises(RawSynthError, match="multiples of 8 for forward\\(\\), got 12x16 \\(use predict"):
        cond(torch.rand(1, 4, 12, 16), torch.rand(1, 4, 12, 16))
    with pytest.raises(RawSynthError, match="noisy: expected a float tensor"):
        cond.predict(torch.zeros(1, 4, 8, 8, dtype=torch.int32), x)


def test_config_and_presets() -> None:
    paper = DENOISER_PRESETS["denoiser-paper"]
    assert (paper.dim, paper.enc_blocks, paper.dec_blocks, paper.refinement_blocks, paper.heads) == (
        48, (4, 6, 6, 8), (4, 6, 6), 4, (1, 2, 4, 8))
    assert sorted(denoise.list_denoisers()) == ["denoiser-paper", "denoiser-tiny"]
    cfg = get_denoiser_config("denoiser-tiny", conditioned=True)
    assert DenoiserConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["enc_blocks"] == list(cfg.enc_blocks)
    with torch.device("meta"):
        assert SSDNetDenoiser(paper).num_parameters() == 35_565_124
    with pytest.raises(RawSynthError, match="unknown denoiser 'huge': expected one of denoiser-paper, denoiser-tiny$"):
        create_denoiser("huge")
    with pytest.raises(RawSynthError, match="unknown denoiser 'tiny': expected one of denoiser-paper, denoiser-tiny$"):
        create_denoiser("tiny")  # an inverse-ISP preset
    assert isinstance(create_model("denoiser-tiny", **SMALL), SSDNetDenoiser)  # the one registry builds it too
    with pytest.raises(RawSynthError, match="unknown override\\(s\\) depth"):
        create_denoiser("denoiser-tiny", depth=3)
    with pytest.raises(RawSynthError, match="denoiser config: unknown field\\(s\\) colour"):
        DenoiserConfig.from_dict({"colour": 1})
    with pytest.raises(RawSynthError, match="conditioned must be a boolean, got 'yes'"):
        DenoiserConfig(conditioned="yes")  # type: ignore[arg-type]
    with pytest.raises(RawSynthError, match="heads: 5 heads do not divide the 48 channels of level 1"):
        DenoiserConfig(heads=(5, 2, 4, 8))


def test_checkpoint_round_trip_and_bad_files(tmp_path: Path) -> None:
    model = _randomise_head(create_denoiser("denoiser-tiny", conditioned=True, **SMALL).eval())
    path = save_model(tmp_path / "d.safetensors", model, kind="denoiser", architecture="ssdnet-denoiser",
                      extra={"step": 7})
    loaded, meta = load_model(path, kind="denoiser")
    assert meta["architecture"] == "ssdnet-denoiser" and meta["extra"] == {"step": 7}
    assert isinstance(loaded, SSDNetDenoiser) and loaded.config == model.config and not loaded.training
    x = torch.rand(1, 4, 16, 16)
    with torch.inference_mode():
        assert torch.equal(model(x, x * 1e-3), loaded(x, x * 1e-3))
    again, _ = load_denoiser(path)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))

    with pytest.raises(RawSynthError, match=r"none.safetensors: checkpoint file not found$"):
        load_denoiser(tmp_path / "none.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(RawSynthError, match=r"junk.safetensors: not a safetensors checkpoint$"):
        load_denoiser(junk)
    isp = save_model(tmp_path / "isp.safetensors", create_model("tiny"), kind="ssdnet-isp")
    with pytest.raises(RawSynthError,
                       match=r"isp.safetensors: checkpoint holds a 'ssdnet-isp' model, expected 'denoiser'$"):
        load_denoiser(isp)
    wrong = save_model(tmp_path / "wrong.safetensors", create_model("tiny"), kind="denoiser",
                       architecture="ssdnet-denoiser")
    with pytest.raises(RawSynthError, match="wrong.safetensors: invalid model config .*unknown field"):
        load_denoiser(wrong)


def test_denoise_packed_tiles_cover_the_image() -> None:
    torch.manual_seed(1)
    model = _randomise_head(create_denoiser("denoiser-tiny", conditioned=True, **SMALL).eval())
    noisy = np.random.default_rng(0).random((4, 20, 28), dtype=np.float32)
    shot, read = np.full(4, 1e-3), np.full(4, 1e-5)
    whole = denoise_packed(model, noisy, shot, read, tile=32)
    with torch.inference_mode():
        var = torch.from_numpy(noise_variance(noisy, shot, read))[None]
        direct = model.predict(torch.from_numpy(noisy)[None], var)[0].clamp(0, 1).numpy()
    np.testing.assert_array_equal(whole, direct)  # one tile = one call
    tiled = denoise_packed(model, noisy, shot, read, tile=8, overlap=4)
    assert tiled.shape == noisy.shape and np.all((tiled >= 0) & (tiled <= 1))
    torch.nn.init.zeros_(model.output.weight)  # identity model: every tile core lands in its place
    shifted = noisy * 1.2 - 0.1
    np.testing.assert_array_equal(denoise_packed(model, shifted, shot, read, tile=8, overlap=3),
                                  np.clip(shifted, 0, 1))
    np.testing.assert_array_equal(denoise_packed(model, shifted, shot, read, tile=8, clamp=False), shifted)
    with pytest.raises(RawSynthError, match="shot/read: this denoiser is conditioned"):
        denoise_packed(model, noisy)
    with pytest.raises(RawSynthError, match=r"noisy: expected packed RAW of shape \(4, h, w\)"):
        denoise_packed(model, noisy[0], shot, read)
    with pytest.raises(RawSynthError, match="shot: expected 1 or 4 finite numbers >= 0"):
        denoise_packed(model, noisy, [1, 2], read)
    with pytest.raises(RawSynthError, match="tile: expected an integer >= 8"):
        denoise_packed(model, noisy, shot, read, tile=4)
