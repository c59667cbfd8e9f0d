"""Tests of denoise.dataset: split by shard, crops, Bayer-safe augmentation, determinism, samplers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from denoise.dataset import DIHEDRAL, EpochSampler, ShardDataset, dihedral_packed, make_sampler, split_shards
from raw_synth.cfa import pack, unpack
from raw_synth.errors import RawSynthError
from raw_synth.store import Manifest, SampleRecord, write_shard

XYZ = np.array([[0.6461, -0.1164, -0.0857], [-0.3825, 1.1597, 0.2534], [-0.0416, 0.1540, 0.6039]])
SHOT = np.array([1e-3, 2e-3, 3e-3, 4e-3])
READ = np.array([1e-5, 2e-5, 3e-5, 4e-5])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _smooth(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random RGGB-phase packed image in [0.05, 0.95] (blurred noise, one image per sample)."""
    from scipy.ndimage import gaussian_filter

    mosaic = gaussian_filter(rng.random((2 * h, 2 * w)), 2.0)
    mosaic = (mosaic - mosaic.min()) / max(np.ptp(mosaic), 1e-9)
    return pack(0.05 + 0.9 * mosaic, "RGGB").astype(np.float32)


def make_record(i: int, h: int = 16, w: int = 16, kind: str = "smooth", noise: float = 1.0) -> SampleRecord:
    """Sample ``i``: ``kind="smooth"`` (random content, Gaussian noise scaled by ``noise``) or
    ``"coords"`` (clean encodes each mosaic pixel's position, nearly noise-free, white 65535)."""
    rng = np.random.default_rng(100 + i)
    if kind == "coords":
        rows, cols = np.mgrid[0 : 2 * h, 0 : 2 * w]
        clean = pack((0.1 + 0.8 * (rows * 2 * w + cols) / (4 * h * w)).astype(np.float32), "RGGB")
        black, white = np.zeros(4), np.full(4, 65535.0)
        noisy_n = clean
    else:
        clean = _smooth(rng, h, w)
        black, white = np.full(4, 64.0), np.full(4, 1023.0)
        sigma = np.sqrt(SHOT[:, None, None] * clean + READ[:, None, None]) * noise
        noisy_n = clean + sigma * rng.standard_normal(clean.shape)
    dn = np.clip(np.round(noisy_n * (white - black)[:, None, None] + black[:, None, None]), 0, white[:, None, None])
    return SampleRecord(
        index=i, noisy_dn=dn.astype(np.uint16), clean=clean.astype(np.float32), camera="test-cam", cfa="RGGB",
        iso=100.0, gain=None, shot=SHOT, read=READ, black_level=black, white_level=white,
        wb_gains=np.array([2.0, 1.0, 1.0, 1.5]), xyz_to_cam=XYZ, source=f"test#{i}", crop=(0, 0),
    )


def make_store(root: Path, n: int = 12, shard_size: int = 4, h: int = 16, w: int = 16, kind: str = "smooth",
               noise: float = 1.0) -> Path:
    """Write a complete zarr store of ``n`` samples (float32 clean) into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(config={"test": kind, "n": n}, n_samples=n, shard_size=shard_size, format="zarr")
    for k, start in enumerate(range(0, n, shard_size)):
        records = [make_record(i, h, w, kind, noise) for i in range(start, min(n, start + shard_size))]
        manifest.record_shard(write_shard(root, k, records, fmt="zarr", clean_dtype="float32"))
    manifest.save(root)
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("den-store") / "s", n=12, shard_size=4)


@pytest.fixture(scope="module")
def coord_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("den-coords") / "s", n=4, shard_size=2, h=8, w=8, kind="coords")


def _colour(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """RGGB colour of mosaic sites: 0 R, 1 G, 2 B."""
    return np.where((rows % 2 == 0) & (cols % 2 == 0), 0, np.where((rows % 2 == 1) & (cols % 2 == 1), 2, 1))


@pytest.mark.parametrize("transform", DIHEDRAL)
def test_dihedral_packed_is_the_symmetry_with_every_colour_kept(transform: tuple[bool, bool, bool]) -> None:
    t, fr, fc = transform
    height, width = 8, 12  # mosaic
    rows, cols = np.mgrid[0:height, 0:width]
    code = (rows * 100 + cols).astype(np.float64)
    out = dihedral_packed(pack(code, "RGGB"), t, fr, fc)
    out_h, out_w = (width, height) if t else (height, width)
    out_h, out_w = out_h - 2 * fr, out_w - 2 * fc
    assert out.shape == (4, out_h // 2, out_w // 2)
    mosaic = unpack(out, "RGGB")
    src_rows, src_cols = mosaic // 100, mosaic % 100
    # independent formula: y -> H'-2-y along flipped axes, then undo the transpose
    y, x = np.mgrid[0:out_h, 0:out_w]
    size_h, size_w = (width, height) if t else (height, width)
    a = size_h - 2 - y if fr else y
    b = size_w - 2 - x if fc else x
    exp_rows, exp_cols = (b, a) if t else (a, b)
    np.testing.assert_array_equal(src_rows, exp_rows)
    np.testing.assert_array_equal(src_cols, exp_cols)
    np.testing.assert_array_equal(_colour(src_rows, src_cols), _colour(y, x))


def test_dihedral_packed_rejects_bad_input() -> None:
    with pytest.raises(RawSynthError, match=r"packed: expected shape \(\.\.\., 4, h, w\)"):
        dihedral_packed(np.zeros((3, 4, 4)), False, True, False)
    with pytest.raises(RawSynthError, match="a flipped axis needs at least 2 packed pixels"):
        dihedral_packed(np.zeros((4, 1, 4)), False, True, False)


def test_split_is_by_whole_shards(store: Path) -> None:
    train = ShardDataset(store, "train", val_fraction=0.3, augment=False)
    val = ShardDataset(store, "val", val_fraction=0.3, augment=False)
    assert train.shards == ["shard-000000.zarr", "shard-000001.zarr"] and val.shards == ["shard-000002.zarr"]
    train_idx = {int(train[i]["index"]) for i in range(len(train))}
    val_idx = {int(val[i]["index"]) for i in range(len(val))}
    assert train_idx == set(range(8)) and val_idx == {8, 9, 10, 11}
    first = ShardDataset(store, "val", val_shards=[0], augment=False)
    assert [int(first[i]["index"]) for i in range(len(first))] == [0, 1, 2, 3]
    assert len(ShardDataset(store, "all")) == 12
    assert split_shards(["a", "b", "c", "d"], "val", 0.5) == ["c", "d"]


def test_split_errors(store: Path, tmp_path: Path) -> None:
    with pytest.raises(RawSynthError, match="split: expected one of train, val, all, got 'test'"):
        ShardDataset(store, "test")
    with pytest.raises(RawSynthError, match=r"the 'val' split is empty \(3 shard\(s\), 0 held out\)"):
        ShardDataset(store, "val", val_fraction=0.0)
    with pytest.raises(RawSynthError, match="val_shards: 'shard-000009.zarr' is not a complete shard"):
        ShardDataset(store, "val", val_shards=["shard-000009.zarr"])
    with pytest.raises(RawSynthError, match=r"val_fraction: expected a number in \[0, 1\), got 1.5"):
        ShardDataset(store, "train", val_fraction=1.5)
    one = make_store(tmp_path / "one", n=2, shard_size=4)
    with pytest.raises(RawSynthError, match="the 'train' split is empty .* needs at least 2 shards"):
        ShardDataset(one, "train", val_fraction=0.1)
    with pytest.raises(RawSynthError, match="nowhere: shard store not found"):
        ShardDataset(tmp_path / "nowhere")
    with pytest.raises(RawSynthError, match="crop: expected None, an integer >= 2"):
        ShardDataset(store, "all", crop=1)
    with pytest.raises(RawSynthError, match="smaller than crop"):
        ShardDataset(store, "all", crop=40)[0]


def test_items_without_augmentation_are_the_stored_sample(store: Path) -> None:
    from raw_synth.store import open_shards

    ds = ShardDataset(store, "all", crop=None, augment=False)
    item = ds[5]
    ref = open_shards(store)[5]
    assert set(item) == {"noisy", "clean", "variance", "shot", "read", "wb_gains", "cam_to_rgb", "index"}
    assert all(isinstance(v, torch.Tensor) for v in item.values())
    np.testing.assert_array_equal(item["noisy"].numpy(), ref["noisy"])
    np.testing.assert_array_equal(item["clean"].numpy(), ref["clean"])
    expected_var = np.maximum(ref["noisy"] * SHOT[:, None, None].astype(np.float32)
                              + READ[:, None, None].astype(np.float32), 0)
    np.testing.assert_allclose(item["variance"].numpy(), expected_var, rtol=1e-6, atol=1e-12)
    assert item["variance"].min() >= 0 and item["noisy"].dtype == torch.float32
    np.testing.assert_allclose(item["cam_to_rgb"].numpy().sum(axis=1), 1.0, atol=1e-5)


def test_crops_are_deterministic_per_seed_and_epoch(store: Path) -> None:
    ds = ShardDataset(store, "train", val_fraction=0.3, crop=(6, 10), augment=True, seed=3)
    first = [ds[i] for i in range(len(ds))]
    assert all(tuple(it["noisy"].shape) == (4, 6, 10) for it in first)
    again = ShardDataset(store, "train", val_fraction=0.3, crop=(6, 10), augment=True, seed=3)
    assert all(torch.equal(a["noisy"], again[i]["noisy"]) for i, a in enumerate(first))
    ds.set_epoch(1)
    assert any(not torch.equal(a["noisy"], ds[i]["noisy"]) for i, a in enumerate(first))


@pytest.mark.parametrize("crop", [None, 5])
def test_augmentation_keeps_bayer_semantics_and_alignment(coord_store: Path, crop: int | None) -> None:
    ds = ShardDataset(coord_store, "all", crop=crop, augment=True, seed=0)
    seen: set[tuple[bool, bool, bool]] = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            size = crop or 8
            assert tuple(item["clean"].shape) == (4, size, size)
            clean = unpack(item["clean"].numpy().astype(np.float64), "RGGB")
            noisy = unpack(item["noisy"].numpy().astype(np.float64), "RGGB")
            width = 16  # mosaic width of the stored samples
            position = np.rint((clean - 0.1) / 0.8 * 256).astype(int)
            rows, cols = position // width, position % width
            y, x = np.mgrid[0 : 2 * size, 0 : 2 * size]
            # every output site holds a pixel of its own colour, noisy aligned with clean
            np.testing.assert_array_equal(_colour(rows, cols), _colour(y, x))
            np.testing.assert_allclose(noisy, clean, atol=2e-5)
            # rigid motion: neighbours stay neighbours (a whole-sample flip reflects one border row/col)
            inner = slice(1, -1) if crop is None else slice(None)
            steps_h = np.abs(np.diff(rows, axis=1)) + np.abs(np.diff(cols, axis=1))
            steps_v = np.abs(np.diff(rows, axis=0)) + np.abs(np.diff(cols, axis=0))
            assert np.all(steps_h[inner, inner] == 1) and np.all(steps_v[inner, inner] == 1)
            transposed = bool(rows[1, 1] != rows[1, 2])
            along_y, along_x = (cols, rows) if transposed else (rows, cols)
            seen.add((transposed, bool(along_y[2, 1] < along_y[1, 1]), bool(along_x[1, 2] < along_x[1, 1])))
            # per-plane noise level follows the planes: a transpose swaps Gr and Gb
            gr_source_row_even = rows[0, 1] % 2 == 0  # the Gr site (0, 1) came from a Gr (even-row) site
            order = [0, 1, 2, 3] if gr_source_row_even else [0, 2, 1, 3]
            np.testing.assert_allclose(item["shot"].numpy(), SHOT[order].astype(np.float32))
            np.testing.assert_allclose(item["read"].numpy(), READ[order].astype(np.float32))
    assert len(seen) == 8


def test_samplers_and_workers(store: Path) -> None:
    ds = ShardDataset(store, "all", crop=4, augment=True, seed=1)
    sampler = make_sampler(ds, shuffle=True, seed=5)
    assert isinstance(sampler, EpochSampler)
    first = list(sampler)
    assert sorted(first) == list(range(12)) and list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert list(make_sampler(ds, shuffle=False)) == list(range(12))
    loader = torch.utils.data.DataLoader(ds, batch_size=3, sampler=sampler, num_workers=2)
    batches = list(loader)
    direct = torch.stack([ds[i]["noisy"] for i in list(sampler)])
    assert torch.equal(torch.cat([b["noisy"] for b in batches]), direct)


def test_brighten_levels_noise_and_dn_grid() -> None:
    from denoise.dataset import EXPOSURE_MAX_GAIN, brighten

    rng = np.random.default_rng(5)
    clean = (0.2 * rng.random((4, 64, 64))).astype(np.float32)  # 99th percentile about 0.2
    before = clean.copy()
    black, white = np.array([64.0, 64.0, 0.0, 64.0]), np.full(4, 1023.0)
    shot, read = np.full(4, 1e-3, np.float32), np.full(4, 1e-5, np.float32)
    draw = np.random.default_rng(9)
    target = draw.uniform(0.5, 1.25)
    noisy, bright = brighten(clean, shot, read, black, white, np.random.default_rng(9))
    assert np.array_equal(clean, before)
    gain = target / np.percentile(clean, 99.0)
    np.testing.assert_allclose(bright, np.minimum(clean * np.float32(gain), 1.0), rtol=1e-6)
    assert np.percentile(bright, 99.0) == pytest.approx(min(target, 1.0), rel=1e-5)
    # noise for the new level, on the camera's DN grid and inside its range
    dn = noisy * (white - black)[:, None, None]
    np.testing.assert_allclose(dn, np.rint(dn), atol=2e-3)
    assert noisy.max() <= 1.0 and noisy[2].min() >= 0.0 and noisy[0].min() >= -64.0 / 959.0
    unclipped = (bright < 0.95) & (bright > 0.05)
    ratio = ((noisy - bright) ** 2 / (shot[0] * bright + read[0]))[unclipped]
    assert ratio.mean() == pytest.approx(1.0, abs=0.03)
    # a crop whose 99th percentile is above the drawn target (0.977 for this seed) keeps its level (gain 1),
    # a dark one stops at the largest gain
    lit = np.full((4, 8, 8), 0.6, np.float32)
    lit[:, :, -1] = 1.0
    assert np.random.default_rng(0).uniform(0.5, 1.25) < 1.0
    _, same = brighten(lit, shot, read, black, white, np.random.default_rng(0))
    assert np.array_equal(same, lit)
    _, dark = brighten(np.full((4, 8, 8), 1e-3, np.float32), shot, read, black, white, np.random.default_rng(0))
    assert np.allclose(dark, 1e-3 * EXPOSURE_MAX_GAIN)


def test_exposure_augmentation_in_items(store: Path) -> None:
    plain = ShardDataset(store, "all", crop=8, seed=3)
    half = ShardDataset(store, "all", crop=8, seed=3, exposure=0.5)
    always = ShardDataset(store, "all", crop=8, seed=3, exposure=1.0)
    changed = 0
    for i in range(len(plain)):
        a, h, b = plain[i], half[i], always[i]
        if torch.equal(h["clean"], a["clean"]):
            assert torch.equal(h["noisy"], a["noisy"])  # an item left alone is exactly the stored one
        else:
            changed += 1
            assert torch.equal(h["clean"], b["clean"]) and torch.equal(h["noisy"], b["noisy"])
        assert not torch.equal(b["noisy"], a["noisy"])
        # the variance map follows the new noisy input
        expected = (b["noisy"] * b["shot"][:, None, None] + b["read"][:, None, None]).clamp_min(0.0)
        assert torch.allclose(b["variance"], expected)
        assert float(b["clean"].max()) <= 1.0
        assert torch.equal(always[i]["noisy"], b["noisy"])  # deterministic per (seed, epoch, index)
    assert 0 < changed < len(plain)
    assert "exposure=0.5" in repr(half)


@pytest.mark.parametrize("value", [-0.1, 1.5, True, "0.5"])
def test_exposure_must_be_a_probability(store: Path, value: object) -> None:
    with pytest.raises(RawSynthError) as err:
        ShardDataset(store, "all", exposure=value)  # type: ignore[arg-type]
    assert str(err.value) == f"exposure: expected a probability in [0, 1], got {value!r}"
