"""Tests of raw_synth.isp.color and raw_synth.isp.forward (process_raw, ForwardISP, render)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import colorconv

from raw_synth.errors import RawSynthError
from raw_synth.isp import (
    RGB_TO_XYZ,
    ForwardISP,
    apply_ccm,
    cam_to_rgb_from_xyz_to_cam,
    demosaic,
    gamma_decode,
    gamma_encode,
    inverse_smoothstep,
    process_raw,
    render,
    rgb_to_cam_from_xyz_to_cam,
    smoothstep,
    srgb_decode,
    srgb_encode,
    xyz_to_cam_from_rgb_to_cam,
)

# A realistic XYZ -> camera matrix (illustrative values of a DSLR ColorMatrix), row-major.
CANON_XYZ_TO_CAM = np.array(
    [[0.6941, -0.1164, -0.0857], [-0.3825, 1.1597, 0.2534], [-0.0416, 0.1540, 0.6912]]
)


# --------------------------------------------------------------------------- colour functions


def test_srgb_curve_matches_scikit_image() -> None:
    linear = np.linspace(0.0, 1.0, 1001)[None, :, None].repeat(3, axis=-1)
    # skimage.color.xyz2rgb = sRGB encode of (rgb_from_xyz @ xyz); rgb2xyz = xyz_from_rgb @ decode
    expected_encoded = colorconv.xyz2rgb(apply_ccm(linear, colorconv.xyz_from_rgb))
    np.testing.assert_allclose(srgb_encode(linear), expected_encoded, atol=1e-9)
    expected_decoded = apply_ccm(colorconv.rgb2xyz(linear), colorconv.rgb_from_xyz)
    np.testing.assert_allclose(srgb_decode(linear), expected_decoded, atol=1e-9)


def test_srgb_known_values_and_round_trip() -> None:
    assert srgb_encode(np.array(0.0031308)) == pytest.approx(0.0404499, abs=1e-6)
    assert srgb_encode(np.array(1.0)) == pytest.approx(1.0)
    assert srgb_encode(np.array(0.18)) == pytest.approx(0.461356, abs=1e-6)
    x = np.linspace(0, 1, 257)
    np.testing.assert_allclose(srgb_decode(srgb_encode(x)), x, atol=1e-12)


def test_gamma_and_smoothstep_definitions_and_inverses() -> None:
    x = np.linspace(0, 1, 101)
    np.testing.assert_allclose(gamma_encode(x), np.maximum(x, 1e-8) ** (1 / 2.2))
    np.testing.assert_allclose(gamma_decode(x), np.maximum(x, 1e-8) ** 2.2)
    np.testing.assert_allclose(gamma_decode(gamma_encode(x[1:])), x[1:], rtol=1e-12)
    np.testing.assert_allclose(smoothstep(x), 3 * x**2 - 2 * x**3)
    np.testing.assert_allclose(inverse_smoothstep(smoothstep(x)), x, atol=1e-12)
    np.testing.assert_allclose(smoothstep(inverse_smoothstep(x)), x, atol=1e-12)
    assert inverse_smoothstep(np.array([-0.5, 1.5])).tolist() == pytest.approx([0.0, 1.0])


@pytest.mark.parametrize("fn", [srgb_encode, srgb_decode, gamma_encode, gamma_decode, smoothstep, inverse_smoothstep])
def test_torch_and_numpy_colour_functions_agree_and_keep_dtype(fn) -> None:
    x = np.linspace(0, 1, 97)
    t = torch.linspace(0, 1, 97, dtype=torch.float64)
    out = fn(t)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), fn(x), atol=1e-12)
    assert fn(x.astype(np.float32)).dtype == np.float32


def test_torch_colour_gradients_are_finite_at_branch_points_and_zero() -> None:
    x = torch.tensor([0.0, 0.0031308, 0.02, 0.04045, 0.5, 1.0], dtype=torch.float64, requires_grad=True)
    for fn in (srgb_encode, srgb_decode, gamma_decode, smoothstep):
        (grad,) = torch.autograd.grad(fn(x).sum(), x)
        assert torch.isfinite(grad).all(), fn.__name__
    y = torch.tensor([0.01, 0.3, 0.99], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: inverse_smoothstep(srgb_encode(v)), (y,))


def test_rgb_to_xyz_maps_white_to_d65() -> None:
    np.testing.assert_allclose(RGB_TO_XYZ @ np.ones(3), [0.95047, 1.0, 1.08883], atol=1e-4)


def test_xyz_to_cam_from_rgb_to_cam_inverts_the_normalised_matrix() -> None:
    rgb2cam = rgb_to_cam_from_xyz_to_cam(CANON_XYZ_TO_CAM)
    xyz2cam = xyz_to_cam_from_rgb_to_cam(rgb2cam)
    np.testing.assert_allclose(xyz2cam @ RGB_TO_XYZ, rgb2cam, atol=1e-12)
    np.testing.assert_allclose(rgb_to_cam_from_xyz_to_cam(xyz2cam), rgb2cam, atol=1e-12)
    # the DNG matrix is defined up to row scale: the round trip lands on the same normalised matrix
    np.testing.assert_allclose(rgb_to_cam_from_xyz_to_cam(xyz_to_cam_from_rgb_to_cam(3.0 * rgb2cam)), rgb2cam,
                               atol=1e-12)
    with pytest.raises(RawSynthError, match=r"^rgb_to_cam: expected shape \(3, 3\), got \(2, 3\)$"):
        xyz_to_cam_from_rgb_to_cam(np.zeros((2, 3)))


def test_camera_matrices_follow_the_dng_convention() -> None:
    rgb2cam = rgb_to_cam_from_xyz_to_cam(CANON_XYZ_TO_CAM)
    cam2rgb = cam_to_rgb_from_xyz_to_cam(CANON_XYZ_TO_CAM)
    product = CANON_XYZ_TO_CAM @ RGB_TO_XYZ
    np.testing.assert_allclose(rgb2cam, product / product.sum(1, keepdims=True))
    np.testing.assert_allclose(rgb2cam.sum(1), 1.0)
    np.testing.assert_allclose(cam2rgb @ rgb2cam, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(cam2rgb.sum(1), 1.0)  # camera white -> sRGB white
    batched = cam_to_rgb_from_xyz_to_cam(torch.from_numpy(np.stack([CANON_XYZ_TO_CAM, 2 * CANON_XYZ_TO_CAM])))
    np.testing.assert_allclose(batched.numpy(), np.stack([cam2rgb, cam2rgb]), atol=1e-12)
    with pytest.raises(RawSynthError, match=r"xyz_to_cam: expected shape \(3, 3\) or \(B, 3, 3\), got \(3, 4\)"):
        cam_to_rgb_from_xyz_to_cam(np.zeros((3, 4)))
    with pytest.raises(RawSynthError, match="sums to zero"):
        cam_to_rgb_from_xyz_to_cam(np.zeros((3, 3)))


def test_apply_ccm_numpy_torch_and_per_sample() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((5, 6, 3))
    ccm = rng.normal(size=(3, 3))
    expected = np.einsum("ij,hwj->hwi", ccm, image)
    np.testing.assert_allclose(apply_ccm(image, ccm), expected, atol=1e-12)
    assert apply_ccm(image.astype(np.float32), ccm).dtype == np.float32
    batch = torch.from_numpy(np.stack([image, image]).transpose(0, 3, 1, 2))
    ccms = torch.from_numpy(np.stack([ccm, np.eye(3)]))
    out = apply_ccm(batch, ccms)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(out[1].permute(1, 2, 0).numpy(), image, atol=1e-12)
    with pytest.raises(RawSynthError, match=r"ccm: expected shape \(3, 3\) or \(2, 3, 3\), got \(3, 3, 3\)"):
        apply_ccm(batch, torch.zeros(3, 3, 3))
    with pytest.raises(RawSynthError, match=r"image: expected numpy shape \(H, W, 3\), got \(5, 6\)"):
        apply_ccm(image[..., 0], ccm)


# --------------------------------------------------------------------------- forward ISP


def constant_packed(values: list[float], batch: int = 1, h: int = 4, w: int = 5) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)[None, :, None, None].expand(batch, 4, h, w).clone()


def test_process_raw_on_a_flat_patch_follows_the_pipeline_exactly() -> None:
    packed = constant_packed([0.1, 0.2, 0.2, 0.15])
    wb = torch.tensor([[2.0, 1.0, 1.0, 1.5]], dtype=torch.float64)
    cam2rgb = torch.tensor(cam_to_rgb_from_xyz_to_cam(CANON_XYZ_TO_CAM))
    camera = np.array([0.2, 0.2, 0.225])  # white balanced, demosaicing of a flat patch is exact
    linear = np.clip(cam2rgb.numpy() @ camera, 0, 1)
    for gamma, tone, expected in [
        ("srgb", False, srgb_encode(linear)),
        ("2.2", False, linear ** (1 / 2.2)),
        ("srgb", True, smoothstep(srgb_encode(linear))),
    ]:
        out = process_raw(packed, wb, cam2rgb[None], demosaic="malvar", gamma=gamma, tone=tone)
        assert out.shape == (1, 3, 8, 10) and out.dtype == torch.float64
        np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), np.broadcast_to(expected, (8, 10, 3)), atol=1e-12)


def test_process_raw_clips_before_demosaic_and_after_ccm() -> None:
    packed = constant_packed([0.8, 0.3, 0.3, 0.4])
    out = process_raw(packed, [2.0, 1.0, 1.0, 1.0], torch.eye(3, dtype=torch.float64), gamma="2.2")
    # red: 0.8 * 2 clipped to 1 before demosaic
    np.testing.assert_allclose(out[0, :, 0, 0].numpy(), np.array([1.0, 0.3, 0.4]) ** (1 / 2.2), atol=1e-12)
    negative_ccm = torch.tensor([[1.0, 0, 0], [0, -1.0, 0], [0, 0, 3.0]], dtype=torch.float64)
    out = process_raw(packed, [1.0, 1.0, 1.0, 1.0], negative_ccm, gamma="2.2")
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out[0, :, 2, 2].numpy(), [0.8 ** (1 / 2.2), 1e-8 ** (1 / 2.2), 1.0], atol=1e-12)


def test_process_raw_per_sample_parameters_and_three_gain_form() -> None:
    gen = torch.Generator().manual_seed(0)
    packed = torch.rand(2, 4, 6, 6, generator=gen) * 0.4
    wb3 = torch.tensor([[2.0, 1.0, 1.6], [1.5, 1.2, 2.2]])
    wb4 = wb3[:, [0, 1, 1, 2]]
    ccms = torch.stack([torch.eye(3), torch.from_numpy(cam_to_rgb_from_xyz_to_cam(CANON_XYZ_TO_CAM)).float()])
    batch = process_raw(packed, wb3, ccms)
    assert torch.equal(batch, process_raw(packed, wb4, ccms))
    for i in range(2):
        single = process_raw(packed[i : i + 1], wb4[i], ccms[i])
        torch.testing.assert_close(batch[i : i + 1], single, rtol=0, atol=1e-6)
    # compare with an explicit composition of the documented steps
    manual = demosaic(torch.clamp(packed * wb4[:, :, None, None], 0, 1), "bilinear")
    manual = srgb_encode(torch.clamp(torch.einsum("bij,bjhw->bihw", ccms, manual), 0, 1))
    torch.testing.assert_close(batch, manual, rtol=0, atol=1e-6)


def test_process_raw_is_differentiable() -> None:
    packed = (torch.rand(1, 4, 4, 4, dtype=torch.float64) * 0.3 + 0.05).requires_grad_()
    wb = torch.tensor([[1.8, 1.0, 1.0, 1.4]], dtype=torch.float64, requires_grad=True)
    ccm = torch.from_numpy(cam_to_rgb_from_xyz_to_cam(CANON_XYZ_TO_CAM))[None]
    out = process_raw(packed, wb, ccm, demosaic="malvar", tone=True)
    out.mean().backward()
    assert torch.isfinite(packed.grad).all() and packed.grad.abs().sum() > 0
    assert torch.isfinite(wb.grad).all() and wb.grad.abs().sum() > 0


def test_forward_isp_module_equals_function() -> None:
    packed = torch.rand(2, 4, 5, 5)
    wb = torch.tensor([[2.0, 1.0, 1.5], [1.0, 1.0, 1.0]])
    ccm = torch.eye(3).expand(2, 3, 3)
    module = ForwardISP(demosaic="malvar", gamma="2.2", tone=True)
    assert torch.equal(module(packed, wb, ccm), process_raw(packed, wb, ccm, "malvar", "2.2", True))
    assert list(module.parameters()) == []
    assert "malvar" in repr(module)


def test_render_matches_process_raw_and_supports_menon() -> None:
    rng = np.random.default_rng(5)
    packed = (0.1 + 0.3 * rng.random((4, 8, 10))).astype(np.float32)
    ccm = cam_to_rgb_from_xyz_to_cam(CANON_XYZ_TO_CAM)
    out = render(packed, [2.0, 1.0, 1.0, 1.5], ccm, demosaic="malvar", gamma="srgb", tone=True)
    assert out.shape == (16, 20, 3) and out.dtype == np.float32
    expected = process_raw(torch.from_numpy(packed)[None], torch.tensor([2.0, 1.0, 1.0, 1.5]),
                           torch.from_numpy(ccm).float(), "malvar", "srgb", True)
    np.testing.assert_array_equal(out, expected[0].permute(1, 2, 0).numpy())
    flat = np.broadcast_to(np.array([0.1, 0.2, 0.2, 0.15], np.float32)[:, None, None], (4, 8, 8))
    menon = render(flat, [2.0, 1.0, 1.5], ccm, demosaic="menon")
    bilinear = render(flat, [2.0, 1.0, 1.5], ccm, demosaic="bilinear")
    assert menon.shape == (16, 16, 3) and menon.dtype == np.float32
    np.testing.assert_allclose(menon, bilinear, atol=1e-5)  # both exact on a flat patch
    assert not np.shares_memory(out, packed)


def test_inputs_are_not_mutated() -> None:
    packed = torch.rand(1, 4, 4, 4)
    wb = torch.tensor([[2.0, 1.0, 1.0, 1.5]])
    ccm = torch.eye(3)[None]
    copies = [packed.clone(), wb.clone(), ccm.clone()]
    process_raw(packed, wb, ccm, tone=True)
    for original, copy in zip((packed, wb, ccm), copies):
        assert torch.equal(original, copy)


def test_bad_arguments_name_the_argument_and_expected_shape() -> None:
    packed = torch.rand(2, 4, 4, 4)
    eye = torch.eye(3)
    with pytest.raises(RawSynthError, match=r"packed: expected shape \(B, 4, h, w\), got \(2, 3, 4, 4\)"):
        process_raw(torch.rand(2, 3, 4, 4), [1.0, 1.0, 1.0], eye)
    with pytest.raises(RawSynthError, match=r"wb: expected shape \(2, 4\) or \(2, 3\) .*got \(2, 5\)"):
        process_raw(packed, torch.ones(2, 5), eye)
    with pytest.raises(RawSynthError, match=r"wb: expected shape \(2, 4\) or \(2, 3\) .*got \(3, 4\)"):
        process_raw(packed, torch.ones(3, 4), eye)
    with pytest.raises(RawSynthError, match=r"cam_to_rgb: expected shape \(2, 3, 3\) .*got \(1, 3, 3\)"):
        process_raw(packed, torch.ones(2, 4), eye[None])
    with pytest.raises(RawSynthError, match="demosaic: unknown method 'menon'"):
        process_raw(packed, torch.ones(2, 4), eye, demosaic="menon")  # type: ignore[arg-type]
    with pytest.raises(RawSynthError, match="gamma: unknown transfer function '2.4'"):
        process_raw(packed, torch.ones(2, 4), eye, gamma="2.4")  # type: ignore[arg-type]
    with pytest.raises(RawSynthError, match="packed: expected a torch tensor"):
        process_raw(np.zeros((1, 4, 4, 4)), [1.0, 1.0, 1.0], eye)  # type: ignore[arg-type]
    with pytest.raises(RawSynthError, match=r"packed: expected shape \(4, h, w\), got \(1, 4, 4, 4\)"):
        render(np.zeros((1, 4, 4, 4), np.float32), [1.0, 1.0, 1.0], np.eye(3))
    with pytest.raises(RawSynthError, match=r"wb: expected shape \(4,\) or \(3,\), got \(2,\)"):
        render(np.zeros((4, 4, 4), np.float32), [1.0, 1.0], np.eye(3))
    with pytest.raises(RawSynthError, match=r"cam_to_rgb: expected shape \(3, 3\), got \(4, 3\)"):
        render(np.zeros((4, 4, 4), np.float32), [1.0, 1.0, 1.0], np.zeros((4, 3)))
    with pytest.raises(RawSynthError, match="packed: expected a normalised floating-point array"):
        render(np.zeros((4, 4, 4), np.uint16), [1.0, 1.0, 1.0], np.eye(3))
    with pytest.raises(RawSynthError, match="gamma: unknown transfer function"):
        ForwardISP(gamma="linear")  # type: ignore[arg-type]
