"""Tests of raw_synth.isp.unprocess (Brooks et al. 2019 unprocessing and its forward process)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from raw_synth.errors import RawSynthError
from raw_synth.isp import (
    RGB_TO_XYZ,
    XYZ_TO_CAM_MATRICES,
    UnprocessParams,
    process,
    process_torch,
    random_ccm,
    random_gains,
    render,
    safe_invert_gains,
    stack_params,
    unprocess,
    unprocess_torch,
)

BROOKS_XYZ_TO_CAM = [  # facts 2.1, typed in again here to check the module's constants
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
]


def smooth_image(
    seed: int, height: int = 32, width: int = 48, low: float = 0.0, high: float = 1.0, sigma: float = 2.0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = gaussian_filter(rng.random((height, width, 3)), sigma=(sigma, sigma, 0))
    image = (image - image.min()) / (image.max() - image.min())
    return low + (high - low) * image


def blocks_image(seed: int, block: int = 8, n: int = 4) -> np.ndarray:
    """Piecewise-constant colours in [0.05, 0.7] plus grey blocks."""
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0.05, 0.7, size=(n, n, 3))
    colours[0, 0] = 0.5
    colours[1, 1] = 0.05
    colours[2, 2] = 0.7
    return np.kron(colours, np.ones((block, block, 1)))


def reference_unprocess(rgb: np.ndarray, p: UnprocessParams) -> np.ndarray:
    """Step-by-step transcription of facts 2.2, independent of the module's helpers."""
    x = np.clip(rgb, 0.0, 1.0)
    x = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * x) / 3.0)
    x = np.maximum(x, 1e-8) ** 2.2
    x = np.einsum("ij,hwj->hwi", p.rgb2cam, x)
    g = np.array([1.0 / p.red_gain, 1.0, 1.0 / p.blue_gain]) / p.rgb_gain
    gray = x.mean(axis=-1, keepdims=True)
    mask = (np.maximum(gray - 0.9, 0.0) / 0.1) ** 2
    x = x * np.maximum(mask + (1.0 - mask) * g, g)
    x = np.clip(x, 0.0, 1.0)
    return np.stack([x[0::2, 0::2, 0], x[0::2, 1::2, 1], x[1::2, 0::2, 1], x[1::2, 1::2, 2]])


# --------------------------------------------------------------------------- random camera


def test_constants_match_the_paper_code() -> None:
    for ours, theirs in zip(XYZ_TO_CAM_MATRICES, BROOKS_XYZ_TO_CAM, strict=True):
        np.testing.assert_array_equal(ours, np.array(theirs))


def test_random_ccm_is_the_normalised_convex_combination() -> None:
    rgb2cam = random_ccm(np.random.default_rng(7))
    weights = np.random.default_rng(7).uniform(1e-8, 1e8, size=4)
    weights /= weights.sum()
    xyz2cam = sum(w * np.array(m) for w, m in zip(weights, BROOKS_XYZ_TO_CAM))
    expected = xyz2cam @ RGB_TO_XYZ
    np.testing.assert_allclose(rgb2cam, expected / expected.sum(1, keepdims=True), rtol=1e-12)


def test_random_camera_distribution_over_many_draws() -> None:
    rng = np.random.default_rng(2024)
    ccms = np.stack([random_ccm(rng) for _ in range(500)])
    np.testing.assert_allclose(ccms.sum(-1), 1.0, atol=1e-12)
    assert np.linalg.matrix_rank(ccms.reshape(500, 9)) >= 3  # not a single fixed camera
    gains = np.array([random_gains(rng) for _ in range(4000)])
    inv_rgb, red, blue = 1.0 / gains[:, 0], gains[:, 1], gains[:, 2]
    assert abs(inv_rgb.mean() - 0.8) < 0.01 and abs(inv_rgb.std() - 0.1) < 0.01
    assert red.min() >= 1.9 and red.max() <= 2.4 and abs(red.mean() - 2.15) < 0.01
    assert blue.min() >= 1.5 and blue.max() <= 1.9 and abs(blue.mean() - 1.7) < 0.01


def test_params_sample_order_determinism_and_json_round_trip() -> None:
    p = UnprocessParams.sample(np.random.default_rng(3))
    rng = np.random.default_rng(3)
    rgb2cam = random_ccm(rng)
    assert (p.rgb_gain, p.red_gain, p.blue_gain) == random_gains(rng)
    np.testing.assert_array_equal(p.rgb2cam, rgb2cam)
    np.testing.assert_allclose(p.cam2rgb @ p.rgb2cam, np.eye(3), atol=1e-12)
    assert p == UnprocessParams.sample(np.random.default_rng(3))
    assert p != UnprocessParams.sample(np.random.default_rng(4))
    restored = UnprocessParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert restored == p
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.rgb_gain = 2.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        p.cam2rgb[0, 0] = 1.0  # read-only array


def test_params_validation_errors() -> None:
    good = UnprocessParams.sample(np.random.default_rng(0)).to_dict()
    with pytest.raises(RawSynthError, match="unprocess params: missing key\\(s\\) blue_gain"):
        UnprocessParams.from_dict({k: v for k, v in good.items() if k != "blue_gain"})
    with pytest.raises(RawSynthError, match="unprocess params: unknown key\\(s\\) extra"):
        UnprocessParams.from_dict({**good, "extra": 1})
    with pytest.raises(RawSynthError, match="red_gain: expected a positive finite number, got -2.0"):
        UnprocessParams.from_dict({**good, "red_gain": -2.0})
    with pytest.raises(RawSynthError, match="cam2rgb: not the inverse of rgb2cam"):
        UnprocessParams.from_dict({**good, "cam2rgb": np.eye(3).tolist()})
    with pytest.raises(RawSynthError, match=r"rgb2cam: expected shape \(3, 3\), got \(2, 3\)"):
        UnprocessParams.from_rgb2cam(np.ones((2, 3)), 1.0, 2.0, 1.7)
    with pytest.raises(RawSynthError, match="rgb2cam: matrix is singular"):
        UnprocessParams.from_rgb2cam(np.ones((3, 3)), 1.0, 2.0, 1.7)


# --------------------------------------------------------------------------- unprocess / process


def test_unprocess_follows_the_published_steps() -> None:
    rgb = smooth_image(0)
    packed, p = unprocess(rgb, np.random.default_rng(11))
    assert packed.shape == (4, 16, 24) and packed.dtype == np.float32
    assert packed.min() >= 0.0 and packed.max() <= 1.0
    assert p == UnprocessParams.sample(np.random.default_rng(11))
    np.testing.assert_allclose(packed, reference_unprocess(rgb, p), atol=1e-7)


def test_unprocess_is_deterministic_and_does_not_mutate() -> None:
    rgb = smooth_image(1).astype(np.float32)
    before = rgb.copy()
    a, pa = unprocess(rgb, np.random.default_rng(5))
    b, pb = unprocess(rgb, np.random.default_rng(5))
    c, pc = unprocess(rgb, np.random.default_rng(6))
    assert a.tobytes() == b.tobytes() and pa == pb
    assert pc != pa and not np.array_equal(a, c)
    np.testing.assert_array_equal(rgb, before)
    fixed, p_fixed = unprocess(rgb, None, pa)
    assert p_fixed is pa and fixed.tobytes() == a.tobytes()


@pytest.mark.parametrize("demosaic", ["bilinear", "malvar"])
def test_round_trip_recovers_the_image_where_demosaicing_is_exact(demosaic: str) -> None:
    rgb = blocks_image(0)
    rng = np.random.default_rng(8)
    for _ in range(3):
        packed, p = unprocess(rgb, rng)
        recovered = process(packed, p, demosaic=demosaic, round_trip=True)
        assert recovered.shape == rgb.shape and recovered.dtype == np.float32
        # pixels whose 5x5 neighbourhood lies in one block: both demosaicers are exact there
        interior = np.zeros(rgb.shape[:2], bool)
        for y0 in range(0, 32, 8):
            for x0 in range(0, 32, 8):
                interior[y0 + 2 : y0 + 6, x0 + 2 : x0 + 6] = True
        assert np.abs(recovered - rgb)[interior].max() < 2e-5


def test_round_trip_on_a_smooth_image_is_close() -> None:
    rgb = smooth_image(3, 64, 64, low=0.05, high=0.7, sigma=6.0)
    packed, p = unprocess(rgb, np.random.default_rng(9))
    recovered = process(packed, p, round_trip=True)
    error = np.abs(recovered - rgb)
    # only bilinear demosaicing error is left (measured: max 0.0044 interior, mean 0.0007)
    assert error[2:-2, 2:-2].max() < 0.01 and error.mean() < 0.002


def test_brooks_process_omits_brightness_gain_and_tone_curve() -> None:
    rgb = np.full((8, 8, 3), [0.4, 0.5, 0.3])
    packed, p = unprocess(rgb, np.random.default_rng(12))
    out = process(packed, p)
    expected = render(packed, [p.red_gain, 1.0, 1.0, p.blue_gain], p.cam2rgb, gamma="2.2")
    np.testing.assert_array_equal(out, expected)
    # the flat patch: cam2rgb(camera / rgb_gain) then x^(1/2.2); brightness is lower than the input's
    linear = (0.5 - np.sin(np.arcsin(1.0 - 2.0 * np.array([0.4, 0.5, 0.3])) / 3.0)) ** 2.2
    np.testing.assert_allclose(out[3, 3], (linear / p.rgb_gain) ** (1 / 2.2), atol=1e-5)


def test_highlights_stay_saturated() -> None:
    white = np.ones((4, 6, 3))
    rng = np.random.default_rng(1)
    for _ in range(5):
        packed, _ = unprocess(white, rng)
        np.testing.assert_array_equal(packed, 1.0)
    # the gain fades from g (gray <= 0.9) to max(1, g) (gray = 1)
    g = np.array([1.0 / 2.0, 1.0, 1.0 / 1.6]) / 1.25
    for gray, expected_gain in [(0.5, g), (0.9, g), (0.95, 0.25 + 0.75 * g), (1.0, np.maximum(1.0, g))]:
        pixel = np.full((1, 1, 3), gray)
        gain = safe_invert_gains(pixel, 1.25, 2.0, 1.6)[0, 0] / gray
        np.testing.assert_allclose(gain, expected_gain, rtol=1e-12)
    assert (safe_invert_gains(np.ones((1, 1, 3)), 0.9, 2.0, 1.6) >= 1.0).all()  # g > 1 kept: gain >= 1


# --------------------------------------------------------------------------- torch batch version


def test_torch_unprocess_agrees_with_numpy() -> None:
    rng = np.random.default_rng(21)
    images = np.stack([smooth_image(i, 32, 32) for i in range(3)]).astype(np.float32)
    images[0, :4, :4] = 1.0  # a highlight
    params = [UnprocessParams.sample(rng) for _ in range(3)]
    batch = torch.from_numpy(images).permute(0, 3, 1, 2)
    out = unprocess_torch(batch, params)
    assert out.shape == (3, 4, 16, 16) and out.dtype == torch.float32
    expected = np.stack([unprocess(images[i], None, params[i])[0] for i in range(3)])
    assert np.abs(out.numpy() - expected).max() < 1e-6
    as_dict = unprocess_torch(batch, stack_params(params))
    assert torch.equal(as_dict, out)


def test_torch_process_agrees_with_numpy_and_is_differentiable() -> None:
    rng = np.random.default_rng(22)
    params = [UnprocessParams.sample(rng) for _ in range(2)]
    images = np.stack([smooth_image(10 + i, 16, 16, 0.05, 0.7) for i in range(2)]).astype(np.float32)
    rgb = torch.from_numpy(images).permute(0, 3, 1, 2).requires_grad_()
    raw = unprocess_torch(rgb, params)
    for round_trip in (False, True):
        out = process_torch(raw.detach(), params, round_trip=round_trip)
        for i in range(2):
            expected = process(raw[i].detach().numpy(), params[i], round_trip=round_trip)
            assert np.abs(out[i].permute(1, 2, 0).numpy() - expected).max() < 1e-5
    process_torch(raw, stack_params(params), round_trip=True).sum().backward()
    assert torch.isfinite(rgb.grad).all() and rgb.grad.abs().sum() > 0


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_precise_errors() -> None:
    rng = np.random.default_rng(0)
    p = UnprocessParams.sample(rng)
    with pytest.raises(RawSynthError, match=r"rgb: expected shape \(H, W, 3\), got \(8, 8, 4\)"):
        unprocess(np.zeros((8, 8, 4)), rng)
    with pytest.raises(RawSynthError, match="rgb: height and width must be even and >= 2, got 7x8"):
        unprocess(np.zeros((7, 8, 3)), rng)
    with pytest.raises(RawSynthError, match="rgb: expected floating-point values in \\[0, 1\\], got dtype uint8"):
        unprocess(np.zeros((8, 8, 3), np.uint8), rng)
    with pytest.raises(RawSynthError, match="rgb: image has non-finite values"):
        unprocess(np.full((8, 8, 3), np.nan), rng)
    with pytest.raises(RawSynthError, match="rng: a numpy Generator is required when params is None"):
        unprocess(np.zeros((8, 8, 3)), None)
    with pytest.raises(RawSynthError, match="rng: expected a numpy Generator"):
        unprocess(np.zeros((8, 8, 3)), 42)  # type: ignore[arg-type]
    with pytest.raises(RawSynthError, match=r"packed: expected shape \(4, h, w\), got \(3, 4, 4\)"):
        process(np.zeros((3, 4, 4), np.float32), p)
    with pytest.raises(RawSynthError, match="params: expected UnprocessParams, got dict"):
        process(np.zeros((4, 4, 4), np.float32), p.to_dict())  # type: ignore[arg-type]
    with pytest.raises(RawSynthError, match=r"rgb: expected shape \(B, 3, H, W\), got \(3, 8, 8\)"):
        unprocess_torch(torch.zeros(3, 8, 8), [p])
    with pytest.raises(RawSynthError, match=r"params\['rgb2cam'\]: expected shape \(2, 3, 3\), got \(1, 3, 3\)"):
        unprocess_torch(torch.zeros(2, 3, 8, 8), [p])
    with pytest.raises(RawSynthError, match="params: missing key\\(s\\) red_gain"):
        unprocess_torch(torch.zeros(1, 3, 8, 8), {k: v for k, v in stack_params([p]).items() if k != "red_gain"})
    with pytest.raises(RawSynthError, match=r"raw: expected a torch tensor of shape \(B, 4, h, w\), got \(1, 3, 4"):
        process_torch(torch.zeros(1, 3, 4, 4), [p])
