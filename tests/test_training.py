"""Tests of raw_synth.training: recipes, data layouts, aligned crops and phase-safe augmentation,
schedules, the training loop, exact resume and the exported checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from raw_synth.cfa import mosaic, pack, unify
from raw_synth.checkpoint import load_model, read_checkpoint_metadata
from raw_synth.errors import RawSynthError
from raw_synth.io import RawImage, read_raw, write_dng
from raw_synth.models import get_config
from raw_synth.training import (
    FlatCosineSchedule,
    ProgressiveSchedule,
    TrainConfig,
    augment_pair,
    builtin_config,
    crop_pair,
    detect_layout,
    dihedral,
    find_sources,
    load_config,
    render_camera_raw,
    train_isp,
    transformed_cfa,
)
from raw_synth.training.config import DataConfig, RenderConfig, ValConfig
from raw_synth.training.datasets import (
    holdout_column,
    prepare_data,
    sample_training_crop,
    validation_crops,
)
from tests.conftest import REPO, shared_file

# --------------------------------------------------------------------------------------------- helpers


def _smooth_rgb(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    noise = rng.random((height, width, 3))
    return np.clip(gaussian_filter(noise, (3, 3, 0)) * 1.6 - 0.3, 0, 1).astype(np.float32)


def _raw_of(rgb: np.ndarray) -> np.ndarray:
    """A simple deterministic 'camera': gamma 2.2, white-balance-like gains, RGGB mosaic, packed."""
    linear = rgb.astype(np.float64) ** 2.2 * np.array([0.5, 1.0, 0.7])
    return pack(mosaic(linear, "RGGB"), "RGGB").astype(np.float32)


def _make_paired(root: Path, count: int = 2, height: int = 64, width: int = 96, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "rgb").mkdir(parents=True)
    (root / "raw").mkdir()
    for i in range(count):
        rgb8 = np.round(_smooth_rgb(rng, height, width) * 255).astype(np.uint8)
        Image.fromarray(rgb8).save(root / "rgb" / f"img{i}.png")
        np.save(root / "raw" / f"img{i}.npy", _raw_of(rgb8 / 255.0))  # float, (4, h, w)
    return root


def _tiny_config(**train: object) -> dict:
    cfg = builtin_config("cpu").to_dict()
    cfg["train"].update({"total_steps": 6, "flat_steps": 2, "lr": 2e-3, "eta_min": 1e-5, "checkpoint_every": 2,
                         "progressive": [[3, 16, 3], [6, 32, 2]], "threads": 1, "device": "cpu"})
    cfg["train"].update(train)
    cfg["val"].update({"every": 3, "patch": None})
    cfg["logger"].update({"log_every": 1, "progress": False, "plot": True})
    return cfg


# --------------------------------------------------------------------------------------------- config


def test_builtin_recipes_match_the_yaml_files() -> None:
    for name in ("paper", "cpu"):
        path = REPO / "configs" / f"train-isp-{name}.yaml"
        bundled = REPO / "raw_synth" / "configs" / f"train-isp-{name}.yaml"
        assert load_config(path) == builtin_config(name) == load_config(bundled)
        assert load_config(name) == builtin_config(name)
    paper = builtin_config("paper")
    assert paper.train.progressive == ((92000, 128, 64), (156000, 192, 32), (204000, 256, 16),
                                       (240000, 320, 8), (276000, 384, 8))
    assert (paper.train.lr, paper.train.flat_steps, paper.train.eta_min, paper.train.grad_clip,
            paper.train.loss, paper.train.alpha, paper.train.weight_decay, paper.train.betas) == (
        3e-4, 92000, 1e-6, 0.01, "resampling", 1e-3, 1e-4, (0.9, 0.999))
    assert builtin_config("cpu").network.preset == "tiny"


def test_config_round_trip_and_errors(tmp_path: Path) -> None:
    cfg = builtin_config("cpu")
    assert TrainConfig.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg
    with pytest.raises(RawSynthError, match=r"^train: unknown key\(s\) lrate; known: "):
        TrainConfig.from_dict({"train": {"lrate": 1}})
    with pytest.raises(RawSynthError, match=r"^train.progressive: patch must be a multiple of 16, got 20$"):
        TrainConfig.from_dict({"train": {"total_steps": 10, "progressive": [[10, 20, 2]]}})
    with pytest.raises(RawSynthError, match=r"the last stage ends at step 5, before total_steps 10"):
        TrainConfig.from_dict({"train": {"total_steps": 10, "progressive": [[5, 16, 2]]}})
    with pytest.raises(RawSynthError, match=r"^data.layout: expected one of auto, camera-raw, aim22, paired"):
        TrainConfig.from_dict({"data": {"layout": "fivek"}})
    with pytest.raises(RawSynthError, match=r"^network: unknown model 'huge'"):
        TrainConfig.from_dict({"network": {"preset": "huge"}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {loss: l2}\n")
    with pytest.raises(RawSynthError, match=r"bad.yaml: train.loss: expected one of resampling, l1, got 'l2'$"):
        load_config(bad)
    with pytest.raises(RawSynthError, match=r"missing.yaml: training recipe not found \(give a YAML file or one of "
                                             r"cpu, paper\)$"):
        load_config(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------------------------- schedules


def test_flat_cosine_schedule_values() -> None:
    schedule = FlatCosineSchedule(1e-3, flat_steps=10, cosine_steps=20, eta_min=1e-5)
    assert schedule(0) == schedule(9) == schedule(10) == 1e-3
    assert schedule(20) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    assert schedule(15) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + np.cos(np.pi / 4)))
    assert schedule(30) == pytest.approx(1e-5) and schedule(1000) == pytest.approx(1e-5)
    values = [schedule(s) for s in range(10, 31)]
    assert all(a > b for a, b in zip(values, values[1:]))
    paper = builtin_config("paper").train  # flat 92k, then cosine to 1e-6 at 276k
    schedule = FlatCosineSchedule(paper.lr, paper.flat_steps, paper.total_steps - paper.flat_steps, paper.eta_min)
    assert schedule(91999) == 3e-4
    assert schedule(184000) == pytest.approx((3e-4 + 1e-6) / 2)
    assert schedule(276000) == pytest.approx(1e-6)


def test_progressive_schedule_stages() -> None:
    stages = ProgressiveSchedule(builtin_config("paper").train.progressive)
    assert stages.at(0) == (128, 64) and stages.at(91999) == (128, 64)
    assert stages.at(92000) == (192, 32) and stages.at(155999) == (192, 32)
    assert stages.at(156000) == (256, 16) and stages.at(239999) == (320, 8)
    assert stages.at(240000) == (384, 8) and stages.at(275999) == (384, 8) and stages.at(10**6) == (384, 8)


# --------------------------------------------------------------------------------------------- crops


def test_crop_pair_keeps_alignment_and_refuses_odd_offsets() -> None:
    rgb = np.random.default_rng(1).random((20, 24, 3)).astype(np.float32)
    raw = pack(mosaic(rgb, "RGGB"), "RGGB")
    rgb_c, raw_c = crop_pair(rgb, raw, 4, 6, 10, 12)
    assert rgb_c.shape == (10, 12, 3) and raw_c.shape == (4, 5, 6)
    np.testing.assert_array_equal(raw_c, pack(mosaic(rgb_c, "RGGB"), "RGGB"))
    with pytest.raises(RawSynthError, match=r"must be even to keep the Bayer phase, got y=3 x=6 10x12"):
        crop_pair(rgb, raw, 3, 6, 10, 12)
    with pytest.raises(RawSynthError, match=r"outside the 20x24 image"):
        crop_pair(rgb, raw, 12, 0, 10, 10)


def test_transformed_cfa_values() -> None:
    assert [transformed_cfa(k, 8, 8) for k in range(8)] == [
        "RGGB", "GBRG", "BGGR", "GRBG", "GRBG", "BGGR", "GBRG", "RGGB"]
    assert transformed_cfa(1, 6, 10) == "GBRG"  # non-square even sizes behave the same


@pytest.mark.parametrize("k", range(8))
def test_augmentation_is_phase_safe(k: int) -> None:
    rng = np.random.default_rng(k)
    rgb = rng.random((18, 18, 3)).astype(np.float32)
    raw = pack(mosaic(rgb, "RGGB"), "RGGB")
    rgb_a, raw_a = augment_pair(rgb, raw, k, 16)
    assert rgb_a.shape == (16, 16, 3) and raw_a.shape == (4, 8, 8)
    # the augmented RAW is exactly the RGGB mosaic of the augmented RGB
    np.testing.assert_array_equal(raw_a, pack(mosaic(rgb_a, "RGGB"), "RGGB"))
    # and the RGB is the transformed image, cut at the red site of the transformed mosaic
    transformed = dihedral(rgb, k)
    offsets = [(dy, dx) for dy in (0, 1) for dx in (0, 1)
               if np.array_equal(transformed[dy:dy + 16, dx:dx + 16], rgb_a)]
    assert len(offsets) == 1
    assert not np.shares_memory(rgb_a, rgb) and not np.shares_memory(raw_a, raw)


def test_augmentation_refuses_a_crop_without_margin() -> None:
    rgb = np.zeros((16, 16, 3), np.float32)
    raw = np.zeros((4, 8, 8), np.float32)
    assert augment_pair(rgb, raw, 0, 16)[0].shape == (16, 16, 3)
    with pytest.raises(RawSynthError, match=r"too small for patch 16 with transform 3 \(needs 18\)"):
        augment_pair(rgb, raw, 3, 16)


def test_training_crops_never_touch_held_out_columns(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "rgb").mkdir(parents=True)
    (root / "raw").mkdir()
    height, width = 40, 64
    column = np.broadcast_to(np.arange(width, dtype=np.uint8)[None, :, None] * 4, (height, width, 3))
    rgb8 = np.ascontiguousarray(column)  # red codes the column: 4 * x / 255
    Image.fromarray(rgb8).save(root / "rgb" / "a.png")
    np.save(root / "raw" / "a.npy", _raw_of(rgb8 / 255.0))
    data = prepare_data(root, DataConfig(), ValConfig(holdout="right-columns", fraction=0.25), tmp_path, 0)
    x0 = holdout_column(width, 0.25)
    assert x0 == 48
    limit = np.float32(4 * (x0 - 1) / 255)
    rng = np.random.default_rng(0)
    seen = 0.0
    for _ in range(200):
        rgb, raw = sample_training_crop(data, rng, 16, augment=True)
        np.testing.assert_allclose(raw, _raw_of(rgb), rtol=1e-5, atol=1e-6)
        seen = max(seen, float(rgb[..., 0].max()))
    assert limit - 8 / 255 < seen <= limit  # crops reach the boundary, never past it
    (name, rgb_v, raw_v), = validation_crops(data, ValConfig(holdout="right-columns", patch=None), 0)
    assert name == "a" and rgb_v.shape == (height, width - x0, 3) and rgb_v[..., 0].min() == np.float32(4 * x0 / 255)


# --------------------------------------------------------------------------------------------- layouts


def test_aim22_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for name in ("0", "1"):
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(tmp_path / f"{name}.jpg", quality=95)
        np.save(tmp_path / f"{name}.npy", rng.integers(0, 1025, (16, 24, 4)).astype(np.uint16))
    (tmp_path / "lonely.jpg").write_bytes((tmp_path / "0.jpg").read_bytes())  # no .npy: ignored
    assert detect_layout(tmp_path) == "aim22"
    layout, sources, skipped = find_sources(tmp_path)
    assert layout == "aim22" and [s.name for s in sources] == ["0", "1"] and skipped == []
    pair = sources[1].load(raw_max=1024.0, clip_raw=False)
    expected = np.moveaxis(np.load(tmp_path / "1.npy"), -1, 0).astype(np.float32) / 1024
    np.testing.assert_array_equal(pair.raw, expected)
    assert pair.rgb.shape == (32, 48, 3) and pair.rgb.dtype == np.float32
    assert sources[0].load().raw.max() <= 1.0


def test_paired_layout_and_bad_pairs(tmp_path: Path) -> None:
    root = _make_paired(tmp_path / "data", count=2)
    np.save(root / "raw" / "img1.npy", np.zeros((4, 10, 10), np.float32))  # wrong size: skipped
    assert detect_layout(root) == "paired"
    layout, sources, skipped = find_sources(root)
    assert layout == "paired" and [s.name for s in sources] == ["img0"]
    assert skipped[0]["reason"].endswith("does not match the 64x96 RGB img1.png (expected (32, 48, 4))")
    pair = sources[0].load()
    np.testing.assert_array_equal(pair.rgb, np.asarray(Image.open(root / "rgb" / "img0.png")) / np.float32(255))
    np.testing.assert_array_equal(pair.raw, np.clip(np.load(root / "raw" / "img0.npy"), 0, 1))


def test_bad_data_folders_give_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RawSynthError, match=r"^.*nowhere: data folder not found$"):
        detect_layout(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(RawSynthError, match=r"no training pairs found: expected camera RAW files \(.dng, "):
        train_isp(_tiny_config(), tmp_path, tmp_path / "run")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "fake.dng").write_bytes(b"not a raw file at all")
    with pytest.raises(RawSynthError, match=r"broken: no usable training pairs for layout 'camera-raw' \(1 skipped; "
                                            r"first: .*fake.dng: cannot read RAW file, truncated or corrupt"):
        find_sources(broken, cache_dir=tmp_path / "cache")


def _synthetic_dng(path: Path, cfa: str, seed: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mosaic_dn = rng.integers(64, 1000, size).astype(np.uint16)
    raw = RawImage.from_mosaic(mosaic_dn, cfa, 64, 1023, wb=(1.0, 1.0, 1.0, 1.0), camera="Synthetic Cam")
    write_dng(path, raw)
    return mosaic_dn


@pytest.mark.parametrize("cfa", ["RGGB", "GRBG"])
def test_camera_raw_layout_aligns_and_unifies(tmp_path: Path, cfa: str) -> None:
    from scipy.stats import spearmanr

    root = tmp_path / "data"
    root.mkdir()
    mosaic_dn = _synthetic_dng(root / "shot.dng", cfa, seed=3)
    assert detect_layout(root) == "camera-raw"
    render = RenderConfig(use_camera_wb=True, demosaic="LINEAR")
    rgb, raw, camera = render_camera_raw(root / "shot.dng", render)
    normalised = (mosaic_dn.astype(np.float32) - 64) / (1023 - 64)
    expected = pack(unify(normalised, cfa, "crop"), "RGGB")
    assert rgb.dtype == np.uint16 and rgb.shape[:2] == (2 * raw.shape[1], 2 * raw.shape[2])
    np.testing.assert_allclose(raw, expected, rtol=0, atol=1e-6)
    assert camera["name"] == "Synthetic Cam" and camera["cfa"] == cfa and camera["wb_gains"] == [1, 1, 1, 1]
    # LINEAR demosaicing keeps each site's own sample: the red output at the (unified) red sites
    # is a monotone function of the red RAW there; elsewhere it only interpolates it.
    ranks = {(dy, dx): spearmanr(rgb[dy::2, dx::2, 0].ravel(), raw[0].ravel())[0] for dy in (0, 1) for dx in (0, 1)}
    assert ranks[0, 0] > 0.999 and max(ranks[0, 1], ranks[1, 0], ranks[1, 1]) < 0.9
    # the trainer's source list renders through the same path and caches the pair
    cache = tmp_path / "cache"
    layout, sources, _ = find_sources(root, DataConfig(render=render), cache)
    (source,) = sources
    cached = sorted(cache.glob("shot-*.npz"))
    assert layout == "camera-raw" and len(cached) == 1 and source.rgb_path == cached[0]
    stamp = cached[0].stat().st_mtime_ns
    find_sources(root, DataConfig(render=render), cache)
    assert cached[0].stat().st_mtime_ns == stamp  # reused, not re-rendered
    pair = source.load(clip_raw=False)
    np.testing.assert_array_equal(pair.raw, raw)
    np.testing.assert_array_equal(pair.rgb, rgb.astype(np.float32) / np.float32(65535))


def test_canon_dng_pixels_align_with_libraw_output(shared_data: Path) -> None:
    import rawpy

    path = shared_file(shared_data, "tinydng-canon550d/colorchart.dng")
    with rawpy.imread(str(path)) as handle:
        visible = handle.raw_image_visible.astype(np.float64)
        black, white = handle.black_level_per_channel[0], handle.white_level
        linear = handle.postprocess(gamma=(1, 1), no_auto_bright=True, output_color=rawpy.ColorSpace.raw,
                                    use_camera_wb=False, user_wb=[1, 1, 1, 1], output_bps=16, user_flip=0,
                                    demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR, adjust_maximum_thr=0.0)
    assert linear.shape[:2] == visible.shape == (1156, 1734)
    normalised = np.clip((visible - black) / (white - black), 0, 1)
    for (dy, dx), channel in zip([(0, 0), (0, 1), (1, 0), (1, 1)], [0, 1, 1, 2]):  # RGGB sites
        site = linear[dy::2, dx::2, channel] / 65535.0
        assert np.abs(site - normalised[dy::2, dx::2]).max() < 2e-5  # mosaic (y, x) -> RGB (y, x)
    rgb, raw, camera = render_camera_raw(path)
    assert rgb.shape == (1156, 1734, 3) and raw.shape == (4, 578, 867)
    np.testing.assert_array_equal(raw, read_raw(path).packed)
    assert camera["cfa"] == "RGGB" and camera["wb_gains"][0] == pytest.approx(2.477, abs=1e-3)


# --------------------------------------------------------------------------------------------- training


def test_training_lowers_the_loss_and_exports_a_checkpoint(tmp_path: Path) -> None:
    data = _make_paired(tmp_path / "data", count=2)
    cfg = _tiny_config(total_steps=24, flat_steps=18, lr=3e-3, loss="l1", checkpoint_every=24,
                       progressive=[[24, 16, 8]])
    cfg["val"]["every"] = 12
    summary = train_isp(cfg, data, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["event"] == "train"]
    assert len(losses) == 24
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    vals = [r for r in rows if r["event"] == "val"]
    assert [r["step"] for r in vals] == [12, 24] and all(np.isfinite(r["val_psnr"]) for r in vals)
    assert summary.steps == 24 and summary.complete and summary.layout == "paired" and summary.n_images == 2
    for name in ("config.yaml", "data.json", "curves.png", "model.safetensors", "state/last.safetensors"):
        assert (tmp_path / "run" / name).is_file(), name
    # the exported checkpoint round-trips and predicts what the trained weights predict
    model, meta = load_model(summary.model_path, kind="ssdnet-isp")
    assert meta["architecture"] == "ssdnet" and meta["config"] == get_config("tiny").to_dict()
    assert meta["extra"]["training"]["steps"] == 24 and meta["extra"]["training"]["layout"] == "paired"
    assert meta["extra"]["camera"]["assumed"] is True and len(meta["extra"]["camera"]["wb_gains"]) == 4
    state = load_file(str(tmp_path / "run" / "state" / "last.safetensors"))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[f"model/{key}"], rtol=0, atol=0)
    assert read_checkpoint_metadata(summary.model_path)["kind"] == "ssdnet-isp"


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    data = _make_paired(tmp_path / "data", count=2)
    cfg = _tiny_config()  # resampling loss, augmentation, two progressive stages, flat + cosine lr
    full = train_isp(cfg, data, tmp_path / "full")
    part = train_isp(cfg, data, tmp_path / "part", max_steps=3)
    assert part.steps == 3 and not part.complete
    resumed = train_isp(cfg, data, tmp_path / "part")
    assert resumed.resumed_from == 3 and resumed.steps == 6 and resumed.complete
    a = load_file(str(full.model_path))
    b = load_file(str(resumed.model_path))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa = load_file(str(tmp_path / "full" / "state" / "last.safetensors"))
    sb = load_file(str(tmp_path / "part" / "state" / "last.safetensors"))
    assert all(torch.equal(sa[k], sb[k]) for k in sa if k.startswith(("optim/", "rng/gen/")))
    steps = [json.loads(x)["step"] for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["event"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    # a different recipe in the same folder is refused
    other = _tiny_config(lr=1e-3)
    with pytest.raises(RawSynthError, match=r"part: holds a run made with a different recipe "
                                            r"\(first difference: train.lr\)"):
        train_isp(other, data, tmp_path / "part")


def test_exported_camera_facts() -> None:
    from raw_synth.isp.color import RGB_TO_XYZ, rgb_to_cam_from_xyz_to_cam
    from raw_synth.training.export import check_camera, combined_camera

    canon = {"name": "Canon", "wb_gains": [2.0, 1.0, 1.0, 1.5],
             "xyz_to_cam": [[0.6461, -0.1164, -0.0857], [-0.3825, 1.1597, 0.2534], [-0.0416, 0.1540, 0.6039]]}
    other = {"name": "Other", "wb_gains": [1.0, 1.0, 1.0, 1.0], "xyz_to_cam": np.linalg.inv(RGB_TO_XYZ).tolist()}
    single = combined_camera([(canon, 1.0), (dict(canon, wb_gains=[3.0, 1.0, 1.0, 2.5]), 1.0), (None, 5.0)])
    assert single["name"] == "Canon" and single["wb_gains"] == [2.5, 1.0, 1.0, 2.0]
    mixed = combined_camera([(canon, 3.0), (other, 1.0)])
    assert mixed["name"] == "mixed: Canon, Other"
    np.testing.assert_allclose(mixed["wb_gains"], [1.75, 1.0, 1.0, 1.375])
    expected = 0.75 * rgb_to_cam_from_xyz_to_cam(np.array(canon["xyz_to_cam"])) + 0.25 * np.eye(3)
    np.testing.assert_allclose(rgb_to_cam_from_xyz_to_cam(np.array(mixed["xyz_to_cam"])), expected, atol=1e-12)
    assert [c["weight"] for c in mixed["cameras"]] == [0.75, 0.25]
    fallback = combined_camera([(None, 1.0)])
    assert fallback["assumed"] is True and fallback["wb_gains"] == [2.15, 1.0, 1.0, 1.7]
    with pytest.raises(RawSynthError, match=r"^export.camera.wb_gains: expected 4 positive numbers"):
        check_camera({"name": "x", "wb_gains": [1, 1, 1], "xyz_to_cam": np.eye(3).tolist()}, "export.camera")


def test_bundled_checkpoint_is_the_tiny_isp_model() -> None:
    from raw_synth.training.export import check_camera

    path = REPO / "raw_synth" / "data" / "checkpoints" / "ssdnet-tiny-isp.safetensors"
    if not path.is_file():
        pytest.skip("no bundled checkpoint in this checkout")
    assert path.stat().st_size < 10 * 2**20
    model, meta = load_model(path, kind="ssdnet-isp")
    assert meta["config"] == get_config("tiny").to_dict() and model.sigma_head is not None
    camera = check_camera(meta["extra"]["camera"])
    assert camera["name"].startswith("mixed: ") and len(camera["cameras"]) == 3
    training = meta["extra"]["training"]
    assert training["complete"] and training["steps"] == builtin_config("cpu").train.total_steps
    assert training["split"] == {"format": "raw-synth-split/1", "holdout": "right-columns", "fraction": 0.25}
    with torch.inference_mode():
        out = model.predict(torch.full((1, 3, 32, 32), 0.5))["mu"]
    assert out.shape == (1, 4, 16, 16) and 0 < float(out.mean()) < 1
