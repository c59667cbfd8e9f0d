"""Tests of denoise.ensemble: the Bayer-preserving self-ensemble and its options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from denoise.denoise_file import bundled_denoiser
from denoise.ensemble import ENSEMBLE_SIZES, TRANSFORMS, _pattern, check_ensemble, geometric_ensemble
from denoise.evaluate import model_method
from denoise.inference import denoise_packed, load_denoiser
from denoise.models import create_denoiser
from raw_synth.errors import RawSynthError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_eight_transforms_and_their_bayer_patterns() -> None:
    assert len(set(TRANSFORMS)) == 8
    # a transpose keeps RGGB, a half turn swaps red and blue, quarter turns give the green-first phases
    assert [_pattern(*t) for t in TRANSFORMS] == ["RGGB", "RGGB", "BGGR", "BGGR", "GBRG", "GBRG", "GRBG", "GRBG"]


@pytest.mark.parametrize("n", ENSEMBLE_SIZES)
def test_identity_denoiser_gives_back_its_input(n: int) -> None:
    noisy = torch.rand(2, 4, 6, 10, generator=torch.Generator().manual_seed(0))
    variance = torch.rand(2, 4, 6, 10, generator=torch.Generator().manual_seed(1))
    seen = []

    def identity(x: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        seen.append((tuple(x.shape), v is not None and v.shape == x.shape))
        return x

    assert torch.allclose(geometric_ensemble(identity, noisy, variance, n), noisy, atol=1e-7)
    assert len(seen) == n and all(ok for _, ok in seen)
    # half and quarter turns put the red site off (0, 0): those inputs get reflected borders
    assert seen[0][0] == (2, 4, 6, 10)
    if n == 8:
        assert seen[2][0] == (2, 4, 7, 11)  # BGGR: a row and a column each side
        assert seen[4][0] == (2, 4, 11, 6)  # a quarter turn (20x12 mosaic, GBRG): one row each side


def test_every_site_keeps_its_colour() -> None:
    """A model that adds 10 x (plane index) shows where each plane went: red and blue stay themselves."""
    noisy = torch.zeros(1, 4, 8, 8)

    def tag(x: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        return x + 10.0 * torch.arange(4.0).view(1, 4, 1, 1)

    for n in ENSEMBLE_SIZES:
        planes = geometric_ensemble(tag, noisy, None, n)[0].mean(dim=(1, 2)).tolist()
        # R (0) and B (30) are never exchanged with anything; the transpose swaps Gr (10) and Gb (20)
        assert planes == pytest.approx([0.0, 10.0, 20.0, 30.0] if n == 1 else [0.0, 15.0, 15.0, 30.0])


def test_the_variance_map_follows_the_mosaic() -> None:
    noisy = torch.rand(1, 4, 8, 12, generator=torch.Generator().manual_seed(2))

    def uses_variance(x: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        assert v is not None
        return v  # the variance map, transformed like the image, comes back onto its own sites

    assert torch.allclose(geometric_ensemble(uses_variance, noisy, noisy * 2.0, 8), noisy * 2.0, atol=1e-6)


def test_errors() -> None:
    with pytest.raises(RawSynthError, match=r"^ensemble: expected one of 1, 2, 4, 8, got 3$"):
        check_ensemble(3)
    with pytest.raises(RawSynthError, match=r"^--ensemble: expected one of 1, 2, 4, 8, got True$"):
        check_ensemble(True, "--ensemble")
    with pytest.raises(RawSynthError, match=r"noisy: expected packed RAW of shape \(B, 4, h, w\), got \(4, 8, 8\)"):
        geometric_ensemble(lambda x, v: x, torch.zeros(4, 8, 8), None, 2)
    model = create_denoiser("denoiser-tiny", conditioned=True, dim=4).eval()
    with pytest.raises(RawSynthError, match=r"^ensemble: expected one of 1, 2, 4, 8, got 5$"):
        denoise_packed(model, np.zeros((4, 8, 8), np.float32), 1e-3, 1e-5, ensemble=5)
    from raw_synth_cli import main

    result = CliRunner().invoke(main, ["denoise", "x.npy", "--out", "y.dng", "--ensemble", "3"])
    assert result.exit_code == 2 and "'3' is not one of '1', '2', '4', '8'" in result.output


def test_tiled_and_whole_image_paths_agree() -> None:
    """denoise_packed (tiles) and the evaluation's method (whole blocks) run the same ensemble."""
    model, _ = load_denoiser(bundled_denoiser())
    rng = np.random.default_rng(3)
    noisy = rng.random((4, 24, 20), dtype=np.float32)
    shot, read = np.full(4, 1e-3), np.full(4, 1e-5)
    tiled = denoise_packed(model, noisy, shot, read, tile=256, ensemble=8)
    method = model_method(model, "m", ensemble=8)
    assert method.info["ensemble"] == 8 and "self-ensemble of 8" in method.description
    whole = method.denoise(noisy[None], shot, read)[0]
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    plain = denoise_packed(model, noisy, shot, read, tile=256)
    assert np.abs(tiled - plain).max() > 1e-3  # a trained network is not equivariant: the ensemble differs


def test_the_ensemble_improves_the_bundled_denoiser() -> None:
    from raw_synth.metrics import psnr
    from tests.test_bundled_denoiser import _pair

    model, _ = load_denoiser(bundled_denoiser())
    shot, read = 3e-3, 4e-5
    noisy, clean = _pair(shot, read)
    plain = denoise_packed(model, noisy, shot, read)
    both = denoise_packed(model, noisy, shot, read, ensemble=8)
    assert psnr(both, clean) > psnr(plain, clean) + 0.05
