"""SIDD evaluation: per-block CFA unification, scores, noise levels, submissions, bad files.

Fixtures are SIDD block/metadata files in the exact formats (tests/fixtures_sidd.py writers)
with known content: 2 images x 3 blocks of 256x256, image 0 an S6 (GRBG, ISO 100), image 1 a
GP (BGGR, ISO 800).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import torch
from skimage.metrics import structural_similarity
from torch import nn

from denoise.baselines import anscombe_forward, anscombe_inverse, anscombe_nlm_denoise, identity_denoise
from denoise.eval_sidd import run_eval_sidd
from denoise.evaluate import evaluate_sidd, load_method, model_method
from denoise.sidd import (
    DEFAULT_CFA,
    find_metadata_files,
    image_infos,
    load_sidd_split,
    mad_noise,
    restore_blocks,
    stored_dtype,
    unify_blocks,
)
from raw_synth.cfa import CFA_PATTERNS, pack, site_offsets
from raw_synth.checkpoint import register_architecture, save_model
from raw_synth.errors import RawSynthError
from raw_synth.io.sidd import read_submit_raw_csv
from raw_synth.isp.color import RGB_TO_XYZ
from raw_synth.isp.forward import process_raw
from tests.fixtures_sidd import S6_COLOR_MATRIX2, write_sidd_blocks, write_sidd_metadata

# ----------------------------------------------------------------------------- fixture builders

SCENES = (
    ("0001_001_S6_00100_00060_3200_L", "GRBG", 100, "SM-G925I"),
    ("0002_002_GP_00800_00100_5500_N", "BGGR", 800, "Pixel"),
)
#: NoiseProfile (beta1, beta2) per colour R, G, B: distinct so that plane mapping is visible.
PROFILE = (1.0e-3, 2.0e-6, 2.0e-3, 3.0e-6, 3.0e-3, 4.0e-6)
NEUTRAL = (0.55273438, 1.0, 0.484375)
N_IMAGES, N_BLOCKS, SIZE = 2, 3, 256


def smooth_blocks(rng: np.random.Generator, n: int, size: int = SIZE) -> np.ndarray:
    """Smooth clean mosaics in [0.03, 0.95]: ramps plus a low-frequency sine."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        phase = rng.uniform(0, 2 * np.pi)
        v = 0.1 + 0.6 * (a * xx + (1 - a) * yy) + 0.1 * np.sin(2 * np.pi * (c * xx + b * yy) + phase)
        out.append(v)
    return np.clip(np.array(out), 0.03, 0.95).astype(np.float32)


def colour_index(cfa: str, size: int = SIZE) -> np.ndarray:
    """0 R, 1 G, 2 B per mosaic site."""
    tile = np.array([{"R": 0, "G": 1, "B": 2}[ch] for ch in cfa]).reshape(2, 2)
    return np.tile(tile, (size // 2, size // 2))


def make_blocks(seed: int = 0, offset: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy, gt)`` float32 ``(2, 3, 256, 256)``: Gaussian noise of PROFILE, or gt + offset."""
    rng = np.random.default_rng(seed)
    gt = np.stack([smooth_blocks(rng, N_BLOCKS) for _ in range(N_IMAGES)])
    if offset is not None:
        return (gt + np.float32(offset)).astype(np.float32), gt
    betas = np.asarray(PROFILE).reshape(3, 2)
    noisy = np.empty_like(gt)
    for i, (_, cfa, _, _) in enumerate(SCENES):
        col = colour_index(cfa)
        var = betas[col, 0] * gt[i] + betas[col, 1]
        noisy[i] = np.clip(gt[i] + np.sqrt(var) * rng.standard_normal(gt[i].shape), 0, 1)
    return noisy.astype(np.float32), gt


def write_metadata_dir(folder: Path, scenes: tuple = SCENES) -> Path:
    for scene, cfa, iso, model in scenes:
        (folder / scene).mkdir(parents=True, exist_ok=True)
        write_sidd_metadata(folder / scene / f"{scene[:4]}_METADATA_RAW_010.MAT", cfa=cfa, iso=iso, scene=scene,
                            model=model, noise_profile=PROFILE, as_shot_neutral=NEUTRAL)
    return folder


def write_split(folder: Path, noisy: np.ndarray, gt: np.ndarray | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if gt is None:
        write_sidd_blocks(folder / "BenchmarkNoisyBlocksRaw.mat", noisy)
    else:
        write_sidd_blocks(folder / "ValidationNoisyBlocksRaw.mat", noisy)
        write_sidd_blocks(folder / "ValidationGtBlocksRaw.mat", gt)
    return folder


# ----------------------------------------------------------------------------- fake denoisers


@dataclass(frozen=True)
class OffsetConfig:
    """Config of :class:`OffsetDenoiser`."""

    conditioned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class OffsetDenoiser(nn.Module):
    """Follows the denoiser contract: returns ``noisy - offset`` (no ``predict``)."""

    def __init__(self, config: OffsetConfig | None = None, offset: float = 0.0) -> None:
        super().__init__()
        self.config = config or OffsetConfig()
        self.offset = nn.Parameter(torch.tensor(float(offset)))
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def forward(self, noisy: torch.Tensor, variance: torch.Tensor | None = None) -> torch.Tensor:
        assert noisy.ndim == 4 and noisy.shape[1] == 4
        assert noisy.shape[-1] % 16 == 0 and noisy.shape[-2] % 16 == 0  # padded by the evaluation
        self.calls.append((noisy.clone(), None if variance is None else variance.clone()))
        return noisy - self.offset


register_architecture("test-offset-denoiser", lambda cfg: OffsetDenoiser(OffsetConfig(**cfg)))


def save_offset_checkpoint(path: Path, offset: float) -> Path:
    return save_model(path, OffsetDenoiser(offset=offset), kind="denoiser", architecture="test-offset-denoiser",
                      extra={"purpose": "test"})


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("sidd")
    noisy, gt = make_blocks(0)
    return {
        "noisy": noisy,
        "gt": gt,
        "val": write_split(root / "val", noisy, gt),
        "meta": write_metadata_dir(root / "meta"),
        "root": root,
    }


def psnr_np(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


# ----------------------------------------------------------------------------- CFA unification


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_unify_blocks_round_trip_and_plane_colours(cfa: str) -> None:
    rng = np.random.default_rng(1)
    blocks = rng.random((3, SIZE, SIZE), dtype=np.float32)
    before = blocks.copy()
    packed = unify_blocks(blocks, cfa)
    dy, dx = site_offsets(cfa)[0]
    assert packed.shape == (3, 4, SIZE // 2 + dy, SIZE // 2 + dx)
    assert packed.dtype == np.float32
    back = restore_blocks(packed, cfa)
    assert back.shape == blocks.shape
    np.testing.assert_array_equal(back, blocks)
    np.testing.assert_array_equal(blocks, before)
    # every packed plane holds only its colour: R, Gr, Gb, B labelled 0, 1, 2, 3
    labels = np.zeros((SIZE, SIZE), np.float32)
    for plane, (oy, ox) in enumerate(site_offsets(cfa)):
        labels[oy::2, ox::2] = plane
    unified_labels = unify_blocks(labels, cfa)
    for plane in range(4):
        assert np.all(unified_labels[plane] == plane)


# ----------------------------------------------------------------------------- loading and facts


def test_load_split_and_metadata_mapping(data: dict[str, Any]) -> None:
    split = load_sidd_split(data["val"], "validation")
    assert split.noisy.shape == (2, 3, 256, 256) and split.gt is not None
    np.testing.assert_array_equal(split.gt, data["gt"])
    assert split.dtype == np.float32 and split.total_images == 2
    files = find_metadata_files(data["meta"])
    assert [f.parent.name for f in files] == [s[0] for s in SCENES]
    infos = image_infos(2, files)
    assert [(i.camera, i.iso, i.cfa, i.cfa_source) for i in infos] == [
        ("S6", 100, "GRBG", "metadata"), ("GP", 800, "BGGR", "metadata")]
    np.testing.assert_allclose(infos[0].shot, [1e-3, 2e-3, 2e-3, 3e-3])
    np.testing.assert_allclose(infos[0].read, [2e-6, 3e-6, 3e-6, 4e-6])
    assert infos[0].noise_source == "metadata NoiseProfile (tag 51041)"
    assert infos[0].has_color


def test_cfa_assumptions_without_metadata() -> None:
    assert [(i.cfa, i.cfa_source) for i in image_infos(2)] == [(DEFAULT_CFA, "default")] * 2
    assert [(i.cfa, i.cfa_source) for i in image_infos(2, cfa="gbrg")] == [("GBRG", "argument")] * 2
    infos = image_infos(2, cfa="S6,GP")
    assert [(i.cfa, i.cfa_source, i.camera) for i in infos] == [("GRBG", "phone", "S6"), ("BGGR", "phone", "GP")]
    with pytest.raises(RawSynthError, match="cfa: 'XX' is neither a Bayer pattern nor a SIDD phone code"):
        image_infos(1, cfa="XX")
    with pytest.raises(RawSynthError, match="cfa: 2 entries for 3 images"):
        image_infos(3, cfa=["RGGB", "BGGR"])


# ----------------------------------------------------------------------------- scores


def test_identity_scores_equal_hand_computation(data: dict[str, Any], tmp_path: Path) -> None:
    ev = run_eval_sidd(data["val"], "identity", tmp_path / "out", metadata_dir=data["meta"], baselines=False,
                       srgb=False, plots=False)
    assert [m.method.name for m in ev.methods] == ["identity"]
    assert ev.methods[0].srgb_psnr is None
    res = ev.methods[0]
    noisy, gt = data["noisy"], data["gt"]
    hand = np.array([[psnr_np(noisy[i, b], gt[i, b]) for b in range(3)] for i in range(2)])
    np.testing.assert_allclose(res.raw_psnr, hand, rtol=0, atol=1e-9)
    summary = ev.summary(res)
    assert summary["raw_psnr"] == pytest.approx(hand.mean(), abs=1e-9)  # mean of per-block PSNRs
    assert summary["raw_psnr"] != pytest.approx(psnr_np(noisy, gt), abs=1e-6)  # not the pooled PSNR
    breakdown = ev.breakdown(res, "raw_psnr")
    assert breakdown["per_image"] == pytest.approx(list(hand.mean(axis=1)), abs=1e-9)
    assert breakdown["per_camera"] == pytest.approx({"GP": hand[1].mean(), "S6": hand[0].mean()}, abs=1e-9)
    assert breakdown["per_iso"] == pytest.approx({"100": hand[0].mean(), "800": hand[1].mean()}, abs=1e-9)
    ref_ssim = np.array([[structural_similarity(noisy[i, b].astype(np.float64), gt[i, b].astype(np.float64),
                                                gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                                data_range=1.0) for b in range(3)] for i in range(2)])
    np.testing.assert_allclose(res.raw_ssim, ref_ssim, atol=1e-7)


def test_srgb_scores_follow_simple_camera_pipeline(data: dict[str, Any], tmp_path: Path) -> None:
    ev = run_eval_sidd(data["val"], "identity", tmp_path / "out", metadata_dir=data["meta"], baselines=False,
                       max_images=1, plots=False)
    cm = np.asarray(S6_COLOR_MATRIX2).reshape(3, 3)
    cam2rgb = np.linalg.inv(RGB_TO_XYZ) @ np.linalg.inv(cm / cm.sum(axis=1, keepdims=True))
    gains = 1.0 / np.asarray(NEUTRAL)[[0, 1, 1, 2]]

    def render(mosaic: np.ndarray) -> np.ndarray:
        packed = torch.from_numpy(pack(mosaic, "GRBG"))[None]
        rgb = process_raw(packed, torch.tensor(gains, dtype=torch.float32), torch.tensor(cam2rgb, dtype=torch.float32),
                          demosaic="malvar", gamma="srgb")[0].permute(1, 2, 0).numpy()
        return np.round(np.clip(rgb.astype(np.float64), 0, 1) * 255) / 255

    for b in range(3):
        expected = psnr_np(render(data["noisy"][0, b]), render(data["gt"][0, b]))
        assert ev.methods[0].srgb_psnr[0, b] == pytest.approx(expected, abs=1e-9)
    assert np.all((ev.methods[0].srgb_ssim > 0) & (ev.methods[0].srgb_ssim <= 1))


def test_offset_checkpoint_scores_its_known_psnr(tmp_path: Path) -> None:
    noisy, gt = make_blocks(5, offset=0.05)
    folder = write_split(tmp_path / "val", noisy, gt)
    ckpt = save_offset_checkpoint(tmp_path / "offset.safetensors", 0.04)
    ev = run_eval_sidd(folder, str(ckpt), tmp_path / "out", metadata_dir=write_metadata_dir(tmp_path / "meta"),
                       baselines=False, batch_size=2, srgb=False, plots=False)
    res = ev.methods[0]
    assert res.method.name == "offset" and res.method.kind == "checkpoint" and not res.method.needs_noise
    # output = gt + 0.01 everywhere -> PSNR = -20 log10(0.01) = 40 dB
    np.testing.assert_allclose(res.raw_psnr, 40.0, atol=2e-3)
    from raw_synth.metrics import ssim

    expected = [[ssim((gt[i, b] + np.float32(0.01)).astype(np.float64), gt[i, b].astype(np.float64))
                 for b in range(3)] for i in range(2)]
    np.testing.assert_allclose(res.raw_ssim, expected, atol=1e-6)
    # the self-ensemble of a model that shifts every pixel alike gives the same output: same scores, its own row name
    ev8 = run_eval_sidd(folder, str(ckpt), tmp_path / "out8", metadata_dir=write_metadata_dir(tmp_path / "meta"),
                        baselines=False, batch_size=2, srgb=False, plots=False, ensemble=8)
    assert ev8.methods[0].method.name == "offset-x8" and ev8.methods[0].method.info["ensemble"] == 8
    np.testing.assert_allclose(ev8.methods[0].raw_psnr, res.raw_psnr, atol=1e-4)


def test_conditioned_model_gets_metadata_variance(data: dict[str, Any]) -> None:
    model = OffsetDenoiser(OffsetConfig(conditioned=True), offset=0.0)
    method = model_method(model, "probe")
    split = load_sidd_split(data["val"], "validation", max_images=1)
    infos = image_infos(1, find_metadata_files(data["meta"]), total_images=2)
    ev = evaluate_sidd(split, infos, [method], batch_size=3, srgb=False, n_crops=0)
    assert len(model.calls) == 1
    seen, variance = model.calls[0]
    assert variance is not None
    h, w = 128, 129  # GRBG 256x256 block unified by one column each side
    shot = torch.tensor([1e-3, 2e-3, 2e-3, 3e-3]).view(1, 4, 1, 1)
    read = torch.tensor([2e-6, 3e-6, 3e-6, 4e-6]).view(1, 4, 1, 1)
    x = seen[..., :h, :w]
    np.testing.assert_allclose(variance[..., :h, :w].numpy(), (shot * x + read).numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(x.numpy(), unify_blocks(data["noisy"][0], "GRBG"))
    # a zero-offset model is the identity: the round trip leaves the blocks untouched
    hand = [psnr_np(data["noisy"][0, b], data["gt"][0, b]) for b in range(3)]
    np.testing.assert_allclose(ev.methods[0].raw_psnr[0], hand, atol=1e-9)


def test_blind_noise_level_without_metadata(data: dict[str, Any], tmp_path: Path) -> None:
    ev = run_eval_sidd(data["val"], "anscombe-nlm", tmp_path / "out", cfa="S6,GP", baselines=False, max_images=1,
                       plots=False)
    assert len(ev.infos) == 1
    for info, true_cfa in zip(ev.infos, ("GRBG",)):
        assert info.cfa == true_cfa and info.cfa_source == "phone"
        assert info.noise_source == "blind (raw_synth.calibrate.estimate_blind)"
        np.testing.assert_allclose(info.shot, [1e-3, 2e-3, 2e-3, 3e-3], rtol=0.25)
    assert any("estimate_blind" in n for n in ev.notes)
    assert any("phone code" in n for n in ev.notes)
    assert ev.methods[0].srgb_psnr is None  # no colour metadata
    identity = np.array([psnr_np(data["noisy"][0, b], data["gt"][0, b]) for b in range(3)])
    assert ev.summary(ev.methods[0])["raw_psnr"] > identity.mean() + 5.0


def test_default_cfa_is_reported_as_an_assumption(data: dict[str, Any], tmp_path: Path) -> None:
    ev = run_eval_sidd(data["val"], "identity", tmp_path / "out", baselines=False, max_images=1, plots=False)
    assert ev.infos[0].cfa == "RGGB" and ev.infos[0].cfa_source == "default"
    assert any("ASSUMED RGGB" in n for n in ev.notes)
    assert any("Only the first 1 of 2 images" in n for n in ev.notes)
    assert ev.split.n_images == 1 and ev.methods[0].raw_psnr.shape == (1, 3)


def test_metadata_noise_mode_and_blind_override(data: dict[str, Any]) -> None:
    split = load_sidd_split(data["val"], "validation", max_images=1)
    nlm = load_method("anscombe-nlm")
    with pytest.raises(RawSynthError, match="no metadata file: no NoiseProfile .* --noise metadata"):
        evaluate_sidd(split, image_infos(1, cfa="GRBG"), [nlm], noise="metadata")
    with pytest.raises(RawSynthError, match="noise: unknown mode 'guess'"):
        evaluate_sidd(split, image_infos(1), [nlm], noise="guess")


# ----------------------------------------------------------------------------- baselines


def test_generalised_anscombe_stabilises_and_inverts() -> None:
    rng = np.random.default_rng(2)
    shot, read = 2e-3, 1e-5
    for level in (0.05, 0.2, 0.8):  # >= 25 'counts' (level / shot); below that the GAT overshoots a little
        x = level + np.sqrt(shot * level + read) * rng.standard_normal(400_000)
        z = anscombe_forward(x, shot, read)
        assert z.std() == pytest.approx(1.0, abs=0.015)
        assert anscombe_inverse(z.mean(), shot, read) == pytest.approx(level, rel=2e-3)
    # Gaussian limit: x / sqrt(read)
    np.testing.assert_allclose(anscombe_forward(np.array([0.3]), 0.0, 4e-6), [150.0])
    np.testing.assert_allclose(anscombe_inverse(np.array([150.0]), 0.0, 4e-6), [0.3])


def test_classical_baseline_denoises_smooth_content() -> None:
    rng = np.random.default_rng(4)
    clean = pack(smooth_blocks(rng, 2), "RGGB")
    shot, read = np.full(4, 2e-3), np.full(4, 1e-5)
    noisy = (clean + np.sqrt(shot[:, None, None] * clean + read[:, None, None]) * rng.standard_normal(clean.shape))
    noisy = noisy.astype(np.float32)
    out = anscombe_nlm_denoise(noisy, shot, read)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert psnr_np(out, clean) > psnr_np(noisy, clean) + 8.0
    np.testing.assert_array_equal(identity_denoise(noisy, shot, read), noisy)
    with pytest.raises(RawSynthError, match="zero noise"):
        anscombe_nlm_denoise(noisy, np.zeros(4), np.zeros(4))
    with pytest.raises(RawSynthError, match=r"expected packed RAW \(B, 4, h, w\)"):
        anscombe_nlm_denoise(noisy[0], shot, read)


def test_mad_noise_on_flat_gaussian() -> None:
    rng = np.random.default_rng(6)
    packed = 0.4 + 0.01 * rng.standard_normal((4, 4, 128, 128))
    shot, read = mad_noise(packed)
    np.testing.assert_array_equal(shot, np.zeros(4))
    np.testing.assert_allclose(read, 1e-4, rtol=0.05)


# ----------------------------------------------------------------------------- submissions


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_benchmark_submissions_round_trip(data: dict[str, Any], tmp_path: Path, dtype: type) -> None:
    stored = data["noisy"].astype(dtype)
    folder = write_split(tmp_path / "bench", stored)
    assert stored_dtype(folder / "BenchmarkNoisyBlocksRaw.mat") == np.dtype(dtype)
    ev = run_eval_sidd(folder, "identity", tmp_path / "out", split="benchmark", plots=False)
    assert [m.method.name for m in ev.methods] == ["identity"]  # no baselines without ground truth
    sub = ev.methods[0].submissions
    mat = scipy.io.loadmat(sub["mat"])
    assert mat["SubmitRaw"].shape == (2, 3, 256, 256) and mat["SubmitRaw"].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(mat["SubmitRaw"], stored)  # identity round trip is exact
    back = read_submit_raw_csv(sub["csv"], block_shape=(256, 256), dtype=dtype, n_blocks=3)
    np.testing.assert_array_equal(back, stored)
    assert Path(sub["mat"]).parent == tmp_path / "out" / "submissions" / "identity"


# ----------------------------------------------------------------------------- bad input


def test_malformed_files_are_refused_naming_the_file(data: dict[str, Any], tmp_path: Path) -> None:
    noisy, gt = data["noisy"], data["gt"]
    only_noisy = tmp_path / "a"
    only_noisy.mkdir()
    write_sidd_blocks(only_noisy / "ValidationNoisyBlocksRaw.mat", noisy)
    with pytest.raises(RawSynthError, match=r"a/ValidationGtBlocksRaw\.mat: file not found"):
        load_sidd_split(only_noisy, "validation")
    with pytest.raises(RawSynthError, match=r"a/BenchmarkNoisyBlocksRaw\.mat: file not found"):
        load_sidd_split(only_noisy, "benchmark")

    mismatch = write_split(tmp_path / "b", noisy, gt[:, :2])
    with pytest.raises(RawSynthError, match=r"ValidationGtBlocksRaw\.mat: shape \(2, 2, 256, 256\) does not match"):
        load_sidd_split(mismatch, "validation")

    bad_nan = noisy.copy()
    bad_nan[1, 2, 5, 5] = np.nan
    with pytest.raises(RawSynthError, match=r"c/ValidationNoisyBlocksRaw\.mat: blocks hold NaN"):
        load_sidd_split(write_split(tmp_path / "c", bad_nan, gt), "validation")

    odd = write_split(tmp_path / "d", noisy[..., :255, :255], gt[..., :255, :255])
    with pytest.raises(RawSynthError, match=r"ValidationNoisyBlocksRaw\.mat: blocks of 255x255 pixels"):
        load_sidd_split(odd, "validation")

    wrong_key = tmp_path / "e"
    wrong_key.mkdir()
    write_sidd_blocks(wrong_key / "BenchmarkNoisyBlocksRaw.mat", noisy, key="blocks")
    with pytest.raises(RawSynthError, match=r"BenchmarkNoisyBlocksRaw\.mat: no variable 'BenchmarkNoisyBlocksRaw'"):
        load_sidd_split(wrong_key, "benchmark")

    three_d = tmp_path / "f"
    three_d.mkdir()
    scipy.io.savemat(three_d / "BenchmarkNoisyBlocksRaw.mat", {"BenchmarkNoisyBlocksRaw": noisy[0]})
    with pytest.raises(RawSynthError, match=r"BenchmarkNoisyBlocksRaw\.mat: .*expected 4-D"):
        load_sidd_split(three_d, "benchmark")

    not_mat = tmp_path / "g"
    not_mat.mkdir()
    (not_mat / "BenchmarkNoisyBlocksRaw.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(RawSynthError, match=r"g/BenchmarkNoisyBlocksRaw\.mat: "):
        load_sidd_split(not_mat, "benchmark")

    one_meta = write_metadata_dir(tmp_path / "meta1", SCENES[:1])
    with pytest.raises(RawSynthError, match=r"meta1: found 1 metadata files, expected 2"):
        run_eval_sidd(data["val"], "identity", tmp_path / "out", metadata_dir=one_meta)
    with pytest.raises(RawSynthError, match=r"nowhere: not a folder"):
        run_eval_sidd(tmp_path / "nowhere", "identity", tmp_path / "out")
    with pytest.raises(RawSynthError, match=r"--model nosuch\.safetensors: no such checkpoint file and not a baseline"):
        run_eval_sidd(data["val"], "nosuch.safetensors", tmp_path / "out")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(RawSynthError, match=r"junk\.safetensors: not a safetensors checkpoint"):
        load_method(str(junk))
    with pytest.raises(RawSynthError, match=r"split: unknown SIDD split 'test'"):
        load_sidd_split(data["val"], "test")
    with pytest.raises(RawSynthError, match=r"max_images: must be >= 1"):
        load_sidd_split(data["val"], "validation", max_images=0)


def test_real_denoiser_checkpoint_follows_the_contract(tmp_path: Path) -> None:
    models = pytest.importorskip("denoise.models")
    model = models.create_denoiser("denoiser-tiny", conditioned=True)
    ckpt = save_model(tmp_path / "tiny.safetensors", model, kind="denoiser", architecture=models.ARCHITECTURE)
    method = load_method(str(ckpt))
    assert (method.name, method.kind, method.needs_noise) == ("tiny", "checkpoint", True)
    assert method.info["architecture"] == "ssdnet-denoiser"
    noisy = np.random.default_rng(0).random((2, 4, 12, 13), dtype=np.float32)  # odd width, as unified GRBG
    out = method.denoise(noisy, np.full(4, 1e-3), np.full(4, 1e-5))
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
