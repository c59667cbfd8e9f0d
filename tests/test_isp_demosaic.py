"""Tests of raw_synth.isp.demosaic against colour-demosaicing (bilinear, Malvar 2004, Menon 2007)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from colour_demosaicing import (
    demosaicing_CFA_Bayer_bilinear,
    demosaicing_CFA_Bayer_Malvar2004,
    demosaicing_CFA_Bayer_Menon2007,
)
from scipy.ndimage import gaussian_filter
from skimage.data import astronaut

from raw_synth.cfa import mosaic, pack, unpack
from raw_synth.errors import RawSynthError
from raw_synth.isp.demosaic import (
    Demosaic,
    demosaic,
    demosaic_bilinear,
    demosaic_malvar,
    demosaic_numpy,
    packed_to_mosaic,
)

REFERENCES = {"bilinear": demosaicing_CFA_Bayer_bilinear, "malvar": demosaicing_CFA_Bayer_Malvar2004}
BORDER = {"bilinear": 1, "malvar": 2}  # kernel radius: where the border rules differ


def smooth_image(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = gaussian_filter(rng.random((height, width, 3)), sigma=(3, 3, 0))
    return (image - image.min()) / (image.max() - image.min())


def astronaut_crop() -> np.ndarray:
    return astronaut()[160:288, 180:308].astype(np.float64) / 255.0  # face and suit: edges, skin


def ours(rgb: np.ndarray, method: str) -> np.ndarray:
    packed = torch.from_numpy(pack(mosaic(rgb, "RGGB"), "RGGB").astype(np.float32))[None]
    return demosaic(packed, method)[0].permute(1, 2, 0).numpy().astype(np.float64)


@pytest.mark.parametrize("method", ["bilinear", "malvar"])
@pytest.mark.parametrize("image", ["smooth", "astronaut"])
def test_interior_matches_colour_demosaicing(method: str, image: str) -> None:
    rgb = smooth_image(0) if image == "smooth" else astronaut_crop()
    reference = REFERENCES[method](mosaic(rgb, "RGGB"), "RGGB")
    b = BORDER[method]
    diff = np.abs(ours(rgb, method) - reference)
    assert diff[b:-b, b:-b].max() < 1e-5
    # the border really is handled differently (phase-keeping mirror vs scipy's half-sample reflect)
    assert diff.max() > 1e-3


@pytest.mark.parametrize("method", ["bilinear", "malvar"])
def test_whole_image_matches_colour_demosaicing_on_mirror_padded_mosaic(method: str) -> None:
    rgb = astronaut_crop()[:40, :52]
    cfa = mosaic(rgb, "RGGB")
    pad = 4  # even, so the padded mosaic is still RGGB
    reference = REFERENCES[method](np.pad(cfa, pad, mode="reflect"), "RGGB")[pad:-pad, pad:-pad]
    assert np.abs(ours(rgb, method) - reference).max() < 1e-5


@pytest.mark.parametrize("method", ["bilinear", "malvar"])
def test_constant_colour_is_exact_everywhere_and_samples_pass_through(method: str) -> None:
    rgb = np.broadcast_to(np.array([0.2, 0.55, 0.9]), (12, 16, 3)).copy()
    assert np.abs(ours(rgb, method) - rgb).max() < 1e-6

    packed = torch.rand(2, 4, 6, 7, generator=torch.Generator().manual_seed(3))
    out = demosaic(packed, method)
    assert out.shape == (2, 3, 12, 14)
    assert torch.equal(out[:, 0, 0::2, 0::2], packed[:, 0])
    assert torch.equal(out[:, 1, 0::2, 1::2], packed[:, 1])
    assert torch.equal(out[:, 1, 1::2, 0::2], packed[:, 2])
    assert torch.equal(out[:, 2, 1::2, 1::2], packed[:, 3])


def test_malvar_beats_bilinear_on_a_natural_image() -> None:
    rgb = astronaut_crop()

    def psnr(method: str) -> float:
        err = ours(rgb, method)[4:-4, 4:-4] - rgb[4:-4, 4:-4]
        return float(10 * np.log10(1.0 / np.mean(err**2)))

    assert psnr("malvar") > psnr("bilinear") + 2.0


def test_batch_equals_single_samples_and_dtype_device_kept() -> None:
    packed = torch.rand(3, 4, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for method in ("bilinear", "malvar"):
        batch = demosaic(packed, method)
        assert batch.dtype == torch.float64
        for i in range(3):
            assert torch.equal(batch[i : i + 1], demosaic(packed[i : i + 1], method))


def test_packed_to_mosaic_matches_cfa_unpack() -> None:
    packed = torch.arange(2 * 4 * 3 * 2, dtype=torch.float32).reshape(2, 4, 3, 2)
    assert torch.equal(packed_to_mosaic(packed)[:, 0], unpack(packed, "RGGB"))


@pytest.mark.parametrize("fn", [demosaic_bilinear, demosaic_malvar])
def test_gradients_are_exact(fn) -> None:
    packed = torch.rand(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (packed,))


def test_numpy_wrapper_matches_torch_and_menon_matches_colour() -> None:
    rgb = smooth_image(1, 24, 32)
    packed = pack(mosaic(rgb, "RGGB"), "RGGB").astype(np.float32)
    for method in ("bilinear", "malvar"):
        out = demosaic_numpy(packed, method)
        assert out.shape == (24, 32, 3) and out.dtype == np.float32
        expected = demosaic(torch.from_numpy(packed)[None], method)[0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(out, expected)
    menon = demosaic_numpy(packed, "menon")
    assert menon.shape == (24, 32, 3) and menon.dtype == np.float32
    reference = demosaicing_CFA_Bayer_Menon2007(unpack(packed.astype(np.float64), "RGGB"), "RGGB")
    assert np.abs(menon - reference).max() < 1e-6


def test_module_wraps_function() -> None:
    packed = torch.rand(2, 4, 4, 4)
    module = Demosaic("malvar")
    assert torch.equal(module(packed), demosaic_malvar(packed))
    assert "malvar" in repr(module)
    with pytest.raises(RawSynthError, match="unknown demosaic method 'vng'"):
        Demosaic("vng")


def test_bad_inputs_raise_precise_errors() -> None:
    with pytest.raises(RawSynthError, match=r"packed: expected shape \(B, 4, h, w\), got \(2, 3, 4, 4\)"):
        demosaic_bilinear(torch.zeros(2, 3, 4, 4))
    with pytest.raises(RawSynthError, match=r"packed: expected shape \(B, 4, h, w\), got \(4, 4, 4\)"):
        demosaic_malvar(torch.zeros(4, 4, 4))
    with pytest.raises(RawSynthError, match="floating-point"):
        demosaic_bilinear(torch.zeros(1, 4, 4, 4, dtype=torch.int32))
    with pytest.raises(RawSynthError, match="at least 2x2"):
        demosaic_bilinear(torch.zeros(1, 4, 1, 4))
    with pytest.raises(RawSynthError, match="unknown method 'ahd'"):
        demosaic(torch.zeros(1, 4, 4, 4), "ahd")  # type: ignore[arg-type]
    with pytest.raises(RawSynthError, match="'menon' is numpy-only"):
        demosaic(torch.zeros(1, 4, 4, 4), "menon")  # type: ignore[arg-type]
    with pytest.raises(RawSynthError, match=r"packed: expected shape \(4, h, w\), got \(4, 4\)"):
        demosaic_numpy(np.zeros((4, 4), np.float32))
    with pytest.raises(RawSynthError, match="unknown method 'x'"):
        demosaic_numpy(np.zeros((4, 4, 4), np.float32), "x")  # type: ignore[arg-type]
