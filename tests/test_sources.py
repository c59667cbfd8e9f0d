"""Tests of raw_synth.sources: resolving --src and cutting deterministic, Bayer-safe patches."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from raw_synth.errors import RawSynthError
from raw_synth.io import read_image
from raw_synth.sources import Skipped, resolve_sources, scan_image


def _photo(path: Path, height: int, width: int, seed: int = 0, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """A folder with 3 usable images (one in a sub-folder) and 4 unusable inputs."""
    root = tmp_path / "photos"
    _photo(root / "a.png", 48, 64, seed=1)
    _photo(root / "sub" / "b.jpg", 70, 40, seed=2)
    _photo(root / "c.PNG", 32, 32, seed=3)
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage, not a jpeg at all" * 3)
    (root / "text.png").write_text("this is not an image\n")
    _photo(root / "small.png", 30, 64, seed=4)
    (root / "README.txt").write_text("ignored: no image extension\n")
    return root


def test_folder_source_keeps_usable_files_and_records_reasons(photos: Path) -> None:
    src = resolve_sources(str(photos), patch=32)
    assert src.kind == "files"
    assert src.ids == ("photos/a.png", "photos/c.PNG", "photos/sub/b.jpg")
    assert src.sizes == ((48, 64), (32, 32), (70, 40))
    assert src.paths == tuple(str((photos / p).resolve()) for p in ("a.png", "c.PNG", "sub/b.jpg"))
    assert src.n_items == 3
    assert set(src.skipped) == {
        Skipped("photos/corrupt.jpg", "not an image file (cannot identify image format)"),
        Skipped("photos/text.png", "not an image file (cannot identify image format)"),
        Skipped("photos/small.png", "smaller than the patch (30x64 < 32x32)"),
    }
    assert src.skipped[0].to_dict() == {"source": src.skipped[0].source, "reason": src.skipped[0].reason}


def test_glob_and_list_file_sources(photos: Path, tmp_path: Path) -> None:
    by_glob = resolve_sources(str(photos / "**" / "*.jpg"), patch=32)
    assert by_glob.ids == (str(photos / "sub" / "b.jpg"),)
    assert [s.source for s in by_glob.skipped] == [str(photos / "corrupt.jpg")]

    listing = photos / "list.txt"
    listing.write_text(f"# training photos\na.png\n\nsub/b.jpg   # the tall one\n{photos / 'c.PNG'}\nmissing.png\n")
    by_list = resolve_sources(str(listing), patch=32)
    assert by_list.ids == ("a.png", "sub/b.jpg", str(photos / "c.PNG"))
    assert by_list.skipped == (Skipped("missing.png", "file not found"),)

    single = resolve_sources(str(photos / "a.png"), patch=32)
    assert single.ids == (str(photos / "a.png"),)


def test_builtin_sources() -> None:
    samples = resolve_sources("samples", patch=64)
    assert samples.kind == "samples"
    assert samples.ids == ("astronaut", "chelsea", "coffee", "rocket")
    patch = samples.load_patch(6, seed=3, patch=64, rng=np.random.default_rng(0))
    item = samples.ids[samples.item_of(6, seed=3)]
    assert patch.source == f"samples/{item}#6"

    leaves = resolve_sources("deadleaves", patch=32)
    assert leaves.kind == "deadleaves" and leaves.n_items is None
    p = leaves.load_patch(17, seed=2, patch=32, rng=np.random.default_rng(0))
    assert p.rgb.shape == (32, 32, 3) and p.rgb.dtype == np.float32
    assert (p.source, p.crop) == ("deadleaves#17", (0, 0))
    from raw_synth.corpora import load_corpus_image

    np.testing.assert_array_equal(p.rgb, load_corpus_image("deadleaves", 17, size=32, seed=2))


def test_patches_are_deterministic_even_and_exact_crops(photos: Path) -> None:
    src = resolve_sources(str(photos), patch=32)
    src = pickle.loads(pickle.dumps(src))  # what a worker receives
    seen = set()
    for index in range(9):
        a = src.load_patch(index, seed=5, patch=32, rng=np.random.default_rng(index))
        b = src.load_patch(index, seed=5, patch=32, rng=np.random.default_rng(index))
        np.testing.assert_array_equal(a.rgb, b.rgb)
        assert (a.source, a.crop) == (b.source, b.crop)
        y, x = a.crop
        assert y % 2 == 0 and x % 2 == 0
        full = read_image(photos / a.source.split("/", 1)[1])
        assert y + 32 <= full.shape[0] and x + 32 <= full.shape[1]
        np.testing.assert_array_equal(a.rgb, full[y : y + 32, x : x + 32])
        seen.add(a.source)
        if index % 3 == 2:  # every run of n_items consecutive indices visits each item once
            assert len(seen) == 3
            seen = set()
    perm5 = [src.item_of(i, seed=5) for i in range(3)]
    assert sorted(perm5) == [0, 1, 2]
    assert [src.item_of(i, seed=5) for i in range(3, 6)] == perm5


def test_file_failing_in_worker_falls_back_and_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    _photo(root / "good.png", 40, 40)
    jpeg = _photo(root / "trunc.jpg", 64, 64, fmt="JPEG")
    data = jpeg.read_bytes()
    jpeg.write_bytes(data[: len(data) // 3])  # header intact, pixels cut: passes the scan
    assert scan_image(jpeg, 32) == ((64, 64), None)
    src = resolve_sources(str(root), patch=32)
    assert src.ids == ("imgs/good.png", "imgs/trunc.jpg") and src.skipped == ()
    for index in range(4):
        patch = src.load_patch(index, seed=0, patch=32, rng=np.random.default_rng(0))
        assert patch.source == "imgs/good.png"
        if src.item_of(index, seed=0) == 1:
            assert len(patch.failed) == 1
            assert patch.failed[0].source == "imgs/trunc.jpg"
            assert patch.failed[0].reason.startswith("truncated or corrupt image (")
        else:
            assert patch.failed == ()


def test_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_text("text")
    _photo(bad / "tiny.png", 8, 8)
    (bad / "y.jpg").write_bytes(b"")
    with pytest.raises(RawSynthError) as info:
        resolve_sources(str(bad), patch=16)
    assert str(info.value) == (
        f"no usable input images in {bad}: 3 skipped (2 not an image file, 1 smaller than the patch)"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RawSynthError, match=r"^no usable input images in .*empty: 0 skipped \(no image files found\)$"):
        resolve_sources(str(empty), patch=16)
    with pytest.raises(RawSynthError, match=r"^--src '.*nowhere': no such folder, file or glob match"):
        resolve_sources(str(tmp_path / "nowhere"), patch=16)
    with pytest.raises(RawSynthError, match=r"^--patch: expected an even number of pixels >= 2, got 33$"):
        resolve_sources("deadleaves", patch=33)
