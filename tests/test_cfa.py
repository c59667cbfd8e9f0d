"""CFA packing, unpacking, mosaicking and Bayer unification."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raw_synth import cfa
from raw_synth.errors import RawSynthError

# (row, column) of R inside the 2x2 tile, written out by hand for each pattern.
RED_SITE = {"RGGB": (0, 0), "GRBG": (0, 1), "GBRG": (1, 0), "BGGR": (1, 1)}
BLUE_SITE = {"RGGB": (1, 1), "GRBG": (1, 0), "GBRG": (0, 1), "BGGR": (0, 0)}


def _labelled_mosaic(pattern: str, height: int = 6, width: int = 8) -> np.ndarray:
    """A mosaic whose value says which colour sits there: R=1, G on R row=2, G on B row=3, B=4."""
    labels = np.zeros((height, width), dtype=np.float32)
    ry, rx = RED_SITE[pattern]
    by, bx = BLUE_SITE[pattern]
    labels[ry::2, rx::2] = 1
    labels[ry::2, 1 - rx :: 2] = 2
    labels[by::2, 1 - bx :: 2] = 3
    labels[by::2, bx::2] = 4
    return labels


@pytest.mark.parametrize("pattern", cfa.CFA_PATTERNS)
def test_pack_takes_each_plane_from_its_site(pattern: str) -> None:
    packed = cfa.pack(_labelled_mosaic(pattern), pattern)
    assert packed.shape == (4, 3, 4)
    for plane, label in enumerate((1, 2, 3, 4)):
        assert np.all(packed[plane] == label), f"plane {cfa.PLANES[plane]} of {pattern}"


@pytest.mark.parametrize("pattern", cfa.CFA_PATTERNS)
def test_pack_unpack_round_trip_numpy_and_torch(pattern: str) -> None:
    rng = np.random.default_rng(0)
    mosaic = rng.random((2, 3, 10, 12)).astype(np.float32)
    packed = cfa.pack(mosaic, pattern)
    assert packed.shape == (2, 3, 4, 5, 6)
    np.testing.assert_array_equal(cfa.unpack(packed, pattern), mosaic)
    tensor = torch.from_numpy(mosaic)
    packed_t = cfa.pack(tensor, pattern)
    assert isinstance(packed_t, torch.Tensor)
    np.testing.assert_array_equal(packed_t.numpy(), packed)
    assert torch.equal(cfa.unpack(packed_t, pattern), tensor)


def test_pack_does_not_mutate_and_keeps_dtype() -> None:
    mosaic = np.arange(16, dtype=np.uint16).reshape(4, 4)
    before = mosaic.copy()
    packed = cfa.pack(mosaic, "BGGR")
    packed[...] = 0
    np.testing.assert_array_equal(mosaic, before)
    assert packed.dtype == np.uint16


@pytest.mark.parametrize("pattern", cfa.CFA_PATTERNS)
def test_mosaic_samples_the_right_channel(pattern: str) -> None:
    rgb = np.zeros((4, 6, 3), dtype=np.float32)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 0.25, 0.5, 0.75
    packed = cfa.pack(cfa.mosaic(rgb, pattern), pattern)
    np.testing.assert_array_equal(packed[:, 0, 0], [0.25, 0.5, 0.5, 0.75])
    torch_rgb = torch.from_numpy(np.moveaxis(rgb, -1, 0))[None]
    np.testing.assert_array_equal(cfa.mosaic(torch_rgb, pattern)[0].numpy(), cfa.mosaic(rgb, pattern))


@pytest.mark.parametrize("pattern", cfa.CFA_PATTERNS)
@pytest.mark.parametrize("size", [(6, 8), (256, 256)])
def test_unify_gives_rggb_phase_and_restores(pattern: str, size: tuple[int, int]) -> None:
    mosaic = _labelled_mosaic(pattern, *size)
    dy, dx = RED_SITE[pattern]
    for mode in ("pad", "crop"):
        unified = cfa.unify(mosaic, pattern, mode=mode)
        sign = 1 if mode == "pad" else -1
        assert unified.shape == (size[0] + sign * 2 * dy, size[1] + sign * 2 * dx)
        np.testing.assert_array_equal(unified, _labelled_mosaic("RGGB", *unified.shape))
        restored = cfa.restore(unified, pattern, mode=mode)
        assert restored.shape == mosaic.shape
        if mode == "pad":
            np.testing.assert_array_equal(restored, mosaic)
        else:  # the cropped border comes back by reflection, which keeps the phase
            np.testing.assert_array_equal(restored, mosaic)  # labels are periodic, so exact
    rng = np.random.default_rng(1)
    values = rng.random(size).astype(np.float32)
    np.testing.assert_array_equal(cfa.restore(cfa.unify(values, pattern), pattern), values)
    cropped_back = cfa.restore(cfa.unify(values, pattern, "crop"), pattern, "crop")
    np.testing.assert_array_equal(cropped_back[dy : size[0] - dy, dx : size[1] - dx],
                                  values[dy : size[0] - dy, dx : size[1] - dx])
    blocks = torch.from_numpy(rng.random((3, 2, *size)).astype(np.float32))
    assert torch.equal(cfa.restore(cfa.unify(blocks, pattern), pattern), blocks)


def test_unified_packing_equals_native_packing() -> None:
    rng = np.random.default_rng(2)
    mosaic = rng.random((8, 8)).astype(np.float32)
    native = cfa.pack(mosaic, "GRBG")
    unified = cfa.pack(cfa.unify(mosaic, "GRBG", "crop"), "RGGB")
    # Cropping drops column 0 (G on the red row, B) and the last column (R, G on the blue row).
    np.testing.assert_array_equal(unified[[0, 2]], native[[0, 2], :, :-1])
    np.testing.assert_array_equal(unified[[1, 3]], native[[1, 3], :, 1:])


def test_cfa_names() -> None:
    assert cfa.check_cfa("grbg") == "GRBG"
    assert cfa.cfa_from_raw_pattern([[0, 1], [3, 2]], "RGBG") == "RGGB"
    assert cfa.cfa_from_raw_pattern([1, 0, 2, 1], "RGB") == "GRBG"
    assert cfa.site_offsets("GBRG") == ((1, 0), (1, 1), (0, 0), (0, 1))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cfa.pack(np.zeros((5, 4)), "RGGB"),
         "mosaic height and width must be even for a Bayer mosaic, got 5x4"),
        (lambda: cfa.unify(np.zeros((4, 7)), "GRBG"),
         "mosaic height and width must be even for a Bayer mosaic, got 4x7"),
        (lambda: cfa.mosaic(np.zeros((3, 4, 3)), "RGGB"),
         "image height and width must be even for a Bayer mosaic, got 3x4"),
        (lambda: cfa.pack(np.zeros((4, 4)), "RGBG"),
         "unknown CFA pattern 'RGBG': expected one of RGGB, GRBG, GBRG, BGGR"),
        (lambda: cfa.unpack(np.zeros((3, 2, 2)), "RGGB"), "packed RAW must have shape (..., 4, h, w), got (3, 2, 2)"),
        (lambda: cfa.mosaic(np.zeros((4, 4)), "RGGB"), "numpy RGB must have shape (H, W, 3), got (4, 4)"),
        (lambda: cfa.unify(np.zeros((4, 4)), "BGGR", mode="shift"),
         "unknown unification mode 'shift': expected 'crop' or 'pad'"),
        (lambda: cfa.cfa_from_raw_pattern([0, 0, 2, 1], "RGB"),
         "CFA tile [0, 0, 2, 1] with colours 'RGB' is not a Bayer pattern"),
    ],
)
def test_errors_are_clear(call, message: str) -> None:
    with pytest.raises(RawSynthError) as info:
        call()
    assert str(info.value) == message
