"""Tests of the fast photo source: compact decode, the photo cache, --crops-per-image, --downscale,
the store identity of both, and procedural corpora other than dead leaves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

import raw_synth.sources as sources_module
from pipelines.config import GenerateConfig, check_config
from pipelines.run import generate
from raw_synth.errors import RawSynthError
from raw_synth.io.images import DOWNSCALES, CompactImage, _encode_png16, box_reduce, decode_image, read_image
from raw_synth.sources import ImageCache, resolve_sources, scan_image
from raw_synth.store import open_shards, verify_store

RNG = np.random.default_rng(20261203)


def _codes(height: int, width: int, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    top = np.iinfo(dtype).max
    shape = (height, width) if channels == 1 else (height, width, channels)
    return RNG.integers(0, top + 1, shape, dtype=dtype)


def _float_path(codes: np.ndarray, scale: float) -> np.ndarray:
    """The old float path of read_image: float64 codes / full scale, grey repeated, then float32."""
    data = codes.astype(np.float64) / scale
    if data.ndim == 2:
        data = np.repeat(data[..., None], 3, axis=-1)
    return np.ascontiguousarray(data[..., :3], dtype=np.float32)


def _pillow_float_path(path: Path) -> np.ndarray:
    """The old float path for 8-bit files, with Pillow's own EXIF transpose."""
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image)
        mode = upright.mode
        if mode in ("L", "LA", "1"):
            return _float_path(np.asarray(upright.convert("L")), 255.0)
        return _float_path(np.asarray(upright.convert("RGB")), 255.0)


def _bits(array: np.ndarray) -> np.ndarray:
    assert array.dtype == np.float32
    return array.view(np.uint32)


# ------------------------------------------------------------------------------------------ compact decode


def test_every_integer_code_converts_as_the_float64_division() -> None:
    for dtype, scale in ((np.uint8, 255.0), (np.uint16, 65535.0)):
        codes = np.arange(np.iinfo(dtype).max + 1, dtype=dtype).reshape(1, -1, 1)
        compact = CompactImage(codes)
        expected = (codes.astype(np.float64) / scale).astype(np.float32)
        np.testing.assert_array_equal(_bits(compact.to_float()[..., 0]), _bits(expected[..., 0]))


def _write_inputs(folder: Path) -> dict[str, tuple[Path, np.ndarray]]:
    """One file per kind and the float image the old path gives for it."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[Path, np.ndarray | None]] = {}
    rgb = _codes(38, 54)
    Image.fromarray(rgb).save(folder / "q.jpg", quality=90)
    files["jpeg"] = (folder / "q.jpg", None)
    Image.fromarray(rgb).save(folder / "rgb.png")
    files["png8"] = (folder / "rgb.png", _float_path(rgb, 255.0))
    grey = _codes(31, 45, channels=1)
    Image.fromarray(grey).save(folder / "grey.png")
    files["grey"] = (folder / "grey.png", _float_path(grey, 255.0))
    Image.fromarray(grey).save(folder / "grey.jpg")
    files["grey-jpeg"] = (folder / "grey.jpg", None)
    rgba = _codes(30, 40, channels=4)
    Image.fromarray(rgba, mode="RGBA").save(folder / "rgba.png")
    files["rgba"] = (folder / "rgba.png", _float_path(rgba, 255.0))
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE).save(folder / "palette.png")
    files["palette"] = (folder / "palette.png", None)
    deep = _codes(27, 35, dtype=np.uint16)
    (folder / "deep.png").write_bytes(_encode_png16(deep))
    files["png16"] = (folder / "deep.png", _float_path(deep, 65535.0))
    tifffile.imwrite(folder / "deep.tif", deep, photometric="rgb")
    files["tiff16"] = (folder / "deep.tif", _float_path(deep, 65535.0))
    for orientation in (3, 6, 8):
        image = Image.fromarray(rgb)
        exif = image.getexif()
        exif[0x0112] = orientation
        image.save(folder / f"turned{orientation}.jpg", exif=exif)
        files[f"exif{orientation}"] = (folder / f"turned{orientation}.jpg", None)
    return {kind: (path, _pillow_float_path(path) if ref is None else ref) for kind, (path, ref) in files.items()}


def test_compact_decode_gives_the_old_float_values_bit_for_bit(tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path / "in")
    assert inputs["exif6"][1].shape == (54, 38, 3)  # turned upright
    for kind, (path, reference) in inputs.items():
        compact = decode_image(path)
        assert compact.pixels.dtype == (np.uint16 if kind in ("png16", "tiff16") else np.uint8), kind
        assert compact.pixels.shape[-1] == (1 if kind.startswith("grey") else 3), kind
        np.testing.assert_array_equal(_bits(read_image(path)), _bits(reference), err_msg=kind)
        height, width = reference.shape[:2]
        for y, x, h, w in ((0, 0, height, width), (2, 4, 16, 12), (height - 10, width - 8, 10, 8)):
            window = compact.crop(y, x, h, w)
            assert window.shape == (h, w, 3) and window.flags.c_contiguous, kind
            np.testing.assert_array_equal(_bits(window), _bits(reference[y : y + h, x : x + w]), err_msg=kind)
    with pytest.raises(ValueError, match="outside"):
        decode_image(inputs["png8"][0]).crop(30, 0, 16, 16)


def test_patches_of_files_and_samples_equal_the_old_float_crops(tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path / "photos")
    src = resolve_sources(str(tmp_path / "photos"), patch=16)
    for index in range(2 * len(inputs)):
        patch = src.load_patch(index, seed=1, patch=16, rng=np.random.default_rng(index))
        reference = read_image(tmp_path / patch.source)
        y, x = patch.crop
        np.testing.assert_array_equal(_bits(patch.rgb), _bits(reference[y : y + 16, x : x + 16]))

    from raw_synth.corpora import load_sample

    samples = resolve_sources("samples", patch=64)
    for index in range(4):
        patch = samples.load_patch(index, seed=2, patch=64, rng=np.random.default_rng(index))
        photo = load_sample(samples.ids[samples.item_of(index, seed=2)])  # the old float path of samples
        y, x = patch.crop
        np.testing.assert_array_equal(_bits(patch.rgb), _bits(photo[y : y + 64, x : x + 64]))


# ------------------------------------------------------------------------------------------ downscale


def _box_reference(codes: np.ndarray, factor: int) -> np.ndarray:
    """Each output pixel: the rounded-half-up integer mean of its block, written out block by block."""
    height, width = codes.shape[0] // factor, codes.shape[1] // factor
    out = np.zeros((height, width, codes.shape[2]), dtype=codes.dtype)
    area = factor * factor
    for i in range(height):
        for j in range(width):
            block = codes[i * factor : (i + 1) * factor, j * factor : (j + 1) * factor].astype(np.int64)
            out[i, j] = (block.sum(axis=(0, 1)) + area // 2) // area
    return out


@pytest.mark.parametrize("factor", [2, 4])
def test_box_reduce_exact_values(factor: int) -> None:
    for dtype in (np.uint8, np.uint16):
        codes = _codes(23, 30, dtype=dtype)
        before = codes.copy()
        reduced = box_reduce(codes, factor)
        assert reduced.shape == (23 // factor, 30 // factor, 3) and reduced.dtype == dtype
        np.testing.assert_array_equal(reduced, _box_reference(codes, factor))
        np.testing.assert_array_equal(codes, before)  # the input is not touched
    rgb = _codes(23, 30)
    pillow = np.asarray(Image.fromarray(rgb).reduce(factor))
    np.testing.assert_array_equal(box_reduce(rgb, factor), pillow[: 23 // factor, : 30 // factor])
    floats = RNG.random((9, 10, 3), dtype=np.float32)
    expected = floats[: 9 // factor * factor, : 10 // factor * factor].astype(np.float64)
    expected = expected.reshape(9 // factor, factor, 10 // factor, factor, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(box_reduce(floats, factor), expected, rtol=1e-6)
    assert box_reduce(floats, factor).dtype == np.float32


def test_downscaled_decode_sizes_and_values(tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path / "in")
    assert DOWNSCALES == sources_module.DOWNSCALES == (1, 2, 4)
    for kind in ("png8", "grey", "png16", "exif6"):
        path = inputs[kind][0]
        full = decode_image(path)
        for factor in (2, 4):
            small = decode_image(path, downscale=factor)
            assert (small.height, small.width) == (full.height // factor, full.width // factor), kind
            np.testing.assert_array_equal(small.pixels, _box_reference(full.pixels, factor), err_msg=kind)
    codes = np.asarray(Image.open(inputs["png8"][0]))
    np.testing.assert_array_equal(_bits(decode_image(inputs["png8"][0], downscale=2).to_float()),
                                  _bits(_float_path(_box_reference(codes, 2), 255.0)))
    with pytest.raises(RawSynthError, match=r"downscale must be one of 1, 2, 4, got 3$"):
        decode_image(inputs["png8"][0], downscale=3)


def test_header_scan_accounts_for_downscale(tmp_path: Path) -> None:
    path = tmp_path / "tall.png"
    Image.fromarray(_codes(70, 40)).save(path)
    assert scan_image(path, 16, downscale=2) == ((70, 40), None)
    assert scan_image(path, 32) == ((70, 40), None)
    assert scan_image(path, 32, downscale=2) == (
        None, "smaller than the patch at --downscale 2 (70x40 shrinks to 35x20 < 32x32)")
    assert resolve_sources(str(tmp_path), patch=16, downscale=2).ids == (f"{tmp_path.name}/tall.png",)
    with pytest.raises(RawSynthError) as info:  # 70x40 / 4 = 17x10
        resolve_sources(str(tmp_path), patch=16, downscale=4)
    assert str(info.value) == (f"no usable input images in {tmp_path}: 1 skipped "
                               f"(1 smaller than the patch at --downscale 4)")


# ------------------------------------------------------------------------------------------ crops per image, cache


def _folder(root: Path, count: int, size: tuple[int, int] = (40, 48)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(_codes(*size)).save(root / f"p{i:02d}.png")
    return root


def test_crops_per_image_mapping_and_one_decode_per_k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _folder(tmp_path / "photos", 5)
    one = resolve_sources(str(root), patch=16)
    three = resolve_sources(str(root), patch=16, crops_per_image=3)
    assert one.fingerprint() == three.fingerprint()
    perm = one.permutation(9)
    assert [three.item_of(i, seed=9) for i in range(12)] == [int(perm[(i // 3) % 5]) for i in range(12)]
    assert [one.item_of(i, seed=9) for i in range(5)] == [int(p) for p in perm]

    import raw_synth.io.images as images

    calls: list[str] = []
    real = images.decode_image
    monkeypatch.setattr(images, "decode_image",
                        lambda path, downscale=1, **kw: calls.append(path) or real(path, downscale, **kw))
    monkeypatch.setattr(sources_module, "_CACHE", ImageCache(0))  # nothing resident: one image at a time
    no_cache = resolve_sources(str(root), patch=16, crops_per_image=4, cache_bytes=0)
    crops = [no_cache.load_patch(i, seed=9, patch=16, rng=np.random.default_rng(i)) for i in range(8)]
    assert len(calls) == 2  # 8 samples, 4 per decode
    assert len({c.source for c in crops[:4]}) == 1 and crops[0].source != crops[4].source
    assert len({c.crop for c in crops[:4]}) > 1  # each sample draws its own crop


def test_cache_holds_its_budget_and_keeps_what_it_holds() -> None:
    def image(nbytes: int) -> CompactImage:
        return CompactImage(np.zeros((1, nbytes, 1), dtype=np.uint8))

    cache = ImageCache(250)
    for name in "abc":
        cache.put((name,), image(100))
    assert list(cache.resident) == [("a",), ("b",)] and cache.nbytes == 200
    assert cache.current is not None and cache.current[0] == ("c",)
    assert cache.get(("c",)) is not None and cache.get(("a",)) is not None
    cache.put(("d",), image(100))  # a newcomer that does not fit replaces the extra slot, not a resident
    assert cache.get(("c",)) is None and cache.get(("d",)) is not None and list(cache.resident) == [("a",), ("b",)]
    cache.put(("e",), image(50))  # fits in what is left
    assert list(cache.resident) == [("a",), ("b",), ("e",)] and cache.nbytes == 250
    cache.set_budget(120)  # shrinking evicts the latest residents first
    assert list(cache.resident) == [("a",)] and cache.nbytes == 100
    cache.set_budget(0)
    assert not cache.resident and cache.nbytes == 0

    calls = []

    def broken() -> CompactImage:
        calls.append(1)
        raise RawSynthError("x.jpg: truncated or corrupt image (broken data)")

    for _ in range(3):
        with pytest.raises(RawSynthError, match="truncated"):
            cache.decode(("x",), broken)
    assert len(calls) == 1


def test_option_errors(tmp_path: Path) -> None:
    with pytest.raises(RawSynthError, match=r"^--crops-per-image: applies to photo sources; the procedural "
                                            r"'deadleaves' is rendered at the patch size \(got --crops-per-image 2\)$"):
        resolve_sources("deadleaves", patch=16, crops_per_image=2)
    with pytest.raises(RawSynthError, match=r"^--downscale: applies to photo sources"):
        resolve_sources("deadleaves", patch=16, downscale=2)
    with pytest.raises(RawSynthError, match=r"^--downscale: expected one of 1, 2, 4, got 3$"):
        resolve_sources("samples", patch=16, downscale=3)
    with pytest.raises(RawSynthError, match=r"^--crops-per-image: expected an integer >= 1, got 0$"):
        resolve_sources("samples", patch=16, crops_per_image=0)
    cases = [
        (dict(crops_per_image=0), "--crops-per-image: expected an integer >= 1, got 0"),
        (dict(downscale=3), "--downscale: expected one of 1, 2, 4, got 3"),
        (dict(cache_mb=-1), "--cache-mb: expected an integer >= 0, got -1"),
    ]
    for changes, message in cases:
        with pytest.raises(RawSynthError) as info:
            check_config(GenerateConfig(n=1, out=str(tmp_path), **changes))
        assert str(info.value) == message


# ------------------------------------------------------------------------------------------ pipeline


BASE = dict(n=12, patch=16, shard_size=4, cameras="sidd-s6,eld-sony-a7s2", seed=3, workers=1, engine="upi",
            crops_per_image=3, downscale=2)


def _config(out: Path, src: Path | str, **changes) -> GenerateConfig:
    return GenerateConfig(out=str(out), src=str(src), **{**BASE, **changes})


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _checksums(out: Path) -> dict[str, str]:
    return {name: entry["checksum"] for name, entry in _manifest(out)["shards"].items()}


@pytest.fixture(scope="module")
def photo_store(tmp_path_factory) -> tuple[Path, Path]:
    """A folder of 4 photos and the uninterrupted in-process store of BASE made from it."""
    root = tmp_path_factory.mktemp("fast")
    photos = _folder(root / "photos", 4, size=(44, 52))
    out = root / "store"
    summary = generate(_config(out, photos), progress=False)
    assert (summary.n_written, summary.scheduler) == (12, "in-process")
    return photos, out


def test_store_follows_the_k_mapping_and_downscaled_crops(photo_store: tuple[Path, Path]) -> None:
    photos, out = photo_store
    config = _manifest(out)["config"]
    assert (config["crops_per_image"], config["downscale"], config["cache_mb"]) == (3, 2, 1024)
    with open_shards(out) as ds:
        samples = [ds[i] for i in range(len(ds))]
    sources = [s["source"] for s in samples]
    assert all(len(set(sources[i : i + 3])) == 1 for i in range(0, 12, 3))
    assert len(set(sources[::3])) == 4  # the 4 photos, one after the other, 3 crops each
    assert all(0 <= s["crop"][0] <= 22 - 16 and 0 <= s["crop"][1] <= 26 - 16 for s in samples)  # 44x52 / 2
    assert verify_store(out).ok


def test_same_bytes_with_two_workers_and_after_a_crash(photo_store: tuple[Path, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    photos, reference = photo_store
    two = tmp_path / "two"
    summary = generate(_config(two, photos, workers=2), progress=False)
    assert summary.scheduler == "local"
    assert _checksums(two) == _checksums(reference)

    import pipelines.run as run

    crashed = tmp_path / "crashed"
    real = run.make_shard
    made: list[int] = []

    def make_then_crash(shard_index, start, stop, job):
        if made:
            raise KeyboardInterrupt  # the process dies after its first shard
        made.append(shard_index)
        return real(shard_index, start, stop, job)

    monkeypatch.setattr(run, "make_shard", make_then_crash)
    with pytest.raises(KeyboardInterrupt):
        generate(_config(crashed, photos), progress=False)
    monkeypatch.undo()
    assert len(_manifest(crashed)["shards"]) == 1
    resumed = generate(_config(crashed, photos, cache_mb=0), progress=False)  # another cache size: same store
    assert (resumed.n_written, resumed.n_resumed) == (8, 4)
    assert _checksums(crashed) == _checksums(reference)


def test_resume_refuses_another_k_or_downscale(photo_store: tuple[Path, Path], tmp_path: Path) -> None:
    photos, reference = photo_store
    before = _manifest(reference)
    for changes, field in ((dict(crops_per_image=1), "crops_per_image: 3 != 1"),
                           (dict(downscale=1), "downscale: 2 != 1")):
        with pytest.raises(RawSynthError) as info:
            generate(_config(reference, photos, **changes), progress=False)
        assert str(info.value) == (f"{reference}: holds a store made with a different configuration (field {field}); "
                                   f"use --overwrite to replace it")
    assert _manifest(reference) == before


def test_a_store_written_before_the_options_resumes_as_k_1_downscale_1(photo_store: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    photos, _ = photo_store
    out = tmp_path / "legacy"
    generate(_config(out, photos, crops_per_image=1, downscale=1), progress=False)
    manifest = _manifest(out)
    for key in ("crops_per_image", "downscale", "cache_mb"):  # what an older raw-synth wrote
        del manifest["config"][key]
    (out / "manifest.json").write_text(json.dumps(manifest))
    expected = _checksums(out)
    shutil.rmtree(out / "shard-000001.zarr")
    summary = generate(_config(out, photos, crops_per_image=1, downscale=1), progress=False)
    assert (summary.n_written, summary.n_resumed) == (4, 8)
    assert _checksums(out) == expected
    with pytest.raises(RawSynthError, match=r"\(field crops_per_image: 1 != 2\)"):
        generate(_config(out, photos, crops_per_image=2, downscale=1), progress=False)


# ------------------------------------------------------------------------------------------ procedural corpora


def test_any_unbounded_corpus_is_a_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from raw_synth import corpora

    def stripes(index: int, size: tuple[int, int], seed: int) -> np.ndarray:
        rgb = np.zeros((*size, 3), dtype=np.float32)
        rgb[:, :, index % 3] = np.linspace(0, 1, size[1], dtype=np.float32) * ((seed + 1) / 8)
        return rgb

    real_length, real_load = corpora.corpus_length, corpora.load_corpus_image
    monkeypatch.setattr(corpora, "CORPORA", (*corpora.CORPORA, "stripes"))
    monkeypatch.setattr(corpora, "corpus_length", lambda name: None if name == "stripes" else real_length(name))
    monkeypatch.setattr(corpora, "load_corpus_image", lambda name, index, size=None, seed=0: (
        stripes(index, size, seed) if name == "stripes" else real_load(name, index, size=size, seed=seed)))

    assert "stripes" in sources_module.procedural_corpora() and "samples" not in sources_module.procedural_corpora()
    src = resolve_sources("stripes", patch=16)
    assert (src.kind, src.procedural, src.n_items, src.item_of(7, seed=0)) == ("stripes", True, None, 7)
    patch = src.load_patch(7, seed=3, patch=16, rng=np.random.default_rng(0))
    assert (patch.source, patch.crop) == ("stripes#7", (0, 0))
    np.testing.assert_array_equal(patch.rgb, stripes(7, (16, 16), 3))

    out = tmp_path / "stripes"
    generate(GenerateConfig(n=4, out=str(out), src="stripes", patch=16, shard_size=2, workers=1,
                            cameras="sidd-s6"), progress=False)
    with open_shards(out) as ds:
        assert [ds[i]["source"] for i in range(4)] == [f"stripes#{i}" for i in range(4)]
    assert _manifest(out)["config"]["sources"]["kind"] == "stripes"
    with pytest.raises(RawSynthError, match=r"^--src '.*nowhere': no such folder, file or glob match; expected .*"
                                            r"procedural corpus \(.*stripes\)$"):
        resolve_sources(str(tmp_path / "nowhere"), patch=16)


def test_cli_passes_the_options(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from raw_synth_cli.cli import main

    photos = _folder(tmp_path / "photos", 2, size=(40, 40))
    out = tmp_path / "store"
    args = ["generate", "--n", "4", "--out", str(out), "--src", str(photos), "--patch", "16", "--shard-size", "4",
            "--workers", "1", "--cameras", "sidd-s6", "--crops-per-image", "2", "--downscale", "2",
            "--cache-mb", "64"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    config = _manifest(out)["config"]
    assert (config["crops_per_image"], config["downscale"], config["cache_mb"]) == (2, 2, 64)
    bad = CliRunner().invoke(main, [*args[:-6], "--crops-per-image", "2", "--src", "deadleaves", "--out",
                                    str(tmp_path / "x")])
    assert bad.exit_code != 0 and "--crops-per-image: applies to photo sources" in bad.output
