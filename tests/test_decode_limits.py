"""Bounded decoding and skipped inputs (issue 13): crafted image bombs, a thread-safe header scan,
decoder failures and non-file folder entries recorded instead of stopping a run."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

import raw_synth.io.images as images
from pipelines.config import LEGACY_DEFAULTS, GenerateConfig, check_config
from pipelines.run import generate
from raw_synth.errors import RawSynthError
from raw_synth.image_header import DEFAULT_MAX_PIXELS
from raw_synth.io.images import decode_image, read_image
from raw_synth.sources import resolve_sources, scan_image
from raw_synth.store import open_shards, verify_store
from raw_synth_cli.cli import main

#: Pillow's own default decompression-bomb threshold, the state of a fresh process.
PILLOW_DEFAULT = 89478485


def _too_large(height: int, width: int, limit: int) -> str:
    return f"image too large ({height}x{width} = {height * width} pixels > limit {limit}; raise --max-pixels)"


def _photo(path: Path, height: int = 40, width: int = 48, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_bomb(path: Path, height: int, width: int, bit_depth: int = 8) -> Path:
    """A PNG whose IHDR claims ``height x width`` RGB pixels, with a few rows of real data."""
    row = b"\0" * (1 + width * 3 * bit_depth // 8)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(row * 2))
                     + _chunk(b"IEND", b""))
    return path


def _tiff_bomb(path: Path, height: int, width: int) -> Path:
    """A valid 8x8 float32 RGB TIFF whose ImageLength and ImageWidth are then patched to claim more."""
    tifffile.imwrite(path, np.random.default_rng(1).random((8, 8, 3)).astype(np.float32), photometric="rgb")
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        for tag in tif.pages[0].tags.values():
            if tag.code in (256, 257):  # ImageWidth, ImageLength: one LONG each, stored in the entry
                assert tag.count == 1 and int(tag.dtype) == 4
                struct.pack_into("<I", data, tag.valueoffset, width if tag.code == 256 else height)
    path.write_bytes(bytes(data))
    return path


def _jpeg_bomb(path: Path, height: int, width: int) -> Path:
    """A small baseline JPEG whose SOF0 segment is patched to claim ``height x width``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), 128, dtype=np.uint8)).save(path, format="JPEG")
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    path.write_bytes(bytes(data))
    return path


def test_the_default_limit_is_the_same_everywhere() -> None:
    assert DEFAULT_MAX_PIXELS == images.DEFAULT_MAX_PIXELS == 2**28
    assert GenerateConfig(n=1, out="x").max_pixels == LEGACY_DEFAULTS["max_pixels"] == 2**28


def test_header_size_reads_png_and_every_tiff_layout(tmp_path: Path) -> None:
    from raw_synth.image_header import header_size

    rgb = np.random.default_rng(0).random((6, 10, 3)).astype(np.float32)
    files = {"pillow.tif": None, "le.tif": dict(byteorder="<"), "be.tif": dict(byteorder=">"),
             "big.tif": dict(bigtiff=True), "big_be.tif": dict(bigtiff=True, byteorder=">"),
             "planar.tif": dict(planarconfig="separate")}
    for name, options in files.items():
        if options is None:
            Image.fromarray((rgb * 255).astype(np.uint8)).save(tmp_path / name)  # SHORT sizes
        else:
            data = np.moveaxis(rgb, -1, 0) if options.get("planarconfig") else rgb
            tifffile.imwrite(tmp_path / name, data, photometric="rgb", **options)
        assert header_size(tmp_path / name) == (6, 10), name
    assert header_size(_photo(tmp_path / "a.png", 7, 9)) == (7, 9)
    assert header_size(_photo(tmp_path / "a.jpg", 7, 9)) is None  # Pillow reads the others
    (tmp_path / "cut.tif").write_bytes(b"II*\0\xff\xff\0\0")  # IFD offset past the end
    assert header_size(tmp_path / "cut.tif") is None


# ------------------------------------------------------------------------------------ crafted bombs


def test_float_tiff_bomb_is_refused_before_any_allocation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _tiff_bomb(tmp_path / "bomb.tif", 100000, 100000)
    with tifffile.TiffFile(bomb) as tif:
        assert tif.pages[0].shape == (100000, 100000, 3)  # what the old scan accepted
    reason = _too_large(100000, 100000, 2**28)
    assert reason == ("image too large (100000x100000 = 10000000000 pixels > limit 268435456; "
                      "raise --max-pixels)")
    assert scan_image(bomb, 32) == (None, reason)

    def no_decoding(*args, **kwargs):
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", no_decoding)
    for read in (decode_image, read_image):
        with pytest.raises(RawSynthError) as info:
            read(bomb)
        assert str(info.value) == f"{bomb}: {reason}"
    with pytest.raises(images._TooLarge, match=r"100000x100000 = 10000000000 pixels > limit 1000"):
        images._read_tiff_high_bit_depth(bomb, 1000)  # the tifffile reader checks the page header itself

    _photo(tmp_path / "good.png")
    src = resolve_sources(str(tmp_path), patch=32)
    assert src.ids == (f"{tmp_path.name}/good.png",)
    assert [s.to_dict() for s in src.skipped] == [{"source": f"{tmp_path.name}/bomb.tif", "reason": reason}]


def test_png_bomb_is_refused_under_a_lowered_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _png_bomb(tmp_path / "bomb.png", 10000, 10000)
    assert scan_image(bomb, 32) == ((10000, 10000), None)  # 100 Mpx is within the default 2**28
    reason = _too_large(10000, 10000, 10**6)
    assert scan_image(bomb, 32, max_pixels=10**6) == (None, reason)
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("Pillow opened an image over the limit"))
    with pytest.raises(RawSynthError) as info:
        decode_image(bomb, max_pixels=10**6)
    assert str(info.value) == f"{bomb}: {reason}"
    monkeypatch.undo()

    deep = _png_bomb(tmp_path / "deep.png", 10000, 10000, bit_depth=16)
    with pytest.raises(RawSynthError) as info:
        decode_image(deep, max_pixels=1000)
    assert str(info.value) == f"{deep}: {_too_large(10000, 10000, 1000)}"
    monkeypatch.setattr(zlib, "decompressobj", lambda: pytest.fail("IDAT inflated"))
    with pytest.raises(images._TooLarge, match=r"10000x10000 = 100000000 pixels > limit 1000;"):
        images._read_png16(deep, 1000)  # the 16-bit reader checks its own IHDR parse before inflating


def test_pillow_bomb_machinery_is_not_the_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", PILLOW_DEFAULT)
    within = _png_bomb(tmp_path / "within.png", 16000, 16000)  # 2.6e8 > 2 * Pillow's default, < 2**28
    assert scan_image(within, 32) == ((16000, 16000), None)
    assert Image.MAX_IMAGE_PIXELS == 2**28  # raised to the limit, never lowered
    big = _jpeg_bomb(tmp_path / "big.jpg", 20000, 20000)  # over the limit: Pillow may only warn
    assert scan_image(big, 32) == (None, _too_large(20000, 20000, 2**28))
    huge = _jpeg_bomb(tmp_path / "huge.jpg", 60000, 60000)  # Pillow's DecompressionBombError
    assert scan_image(huge, 32) == (None, "image too large (more than 268435456 pixels; raise --max-pixels)")
    with pytest.raises(RawSynthError, match=r"huge\.jpg: image too large \(more than 268435456 pixels"):
        decode_image(huge)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # a caller that turned Pillow's check off keeps it off
    assert scan_image(huge, 32) == (None, _too_large(60000, 60000, 2**28))
    assert Image.MAX_IMAGE_PIXELS is None


def test_threaded_header_scan_gives_the_same_answer_every_time(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "mixed"
    for i in range(6):
        _photo(root / f"p{i}.png", seed=i)
    for side in (10000, 12000, 16000, 17000):
        for copy in range(3):
            _png_bomb(root / f"big{side}_{copy}.png", side, side)
    _jpeg_bomb(root / "j20000.jpg", 20000, 20000)
    _jpeg_bomb(root / "j60000.jpg", 60000, 60000)
    _tiff_bomb(root / "t.tif", 100000, 100000)

    def scan() -> tuple:
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", PILLOW_DEFAULT)  # as in a fresh process
        src = resolve_sources(str(root), patch=32, threads=8)
        return src.ids, src.sizes, src.skipped, src.fingerprint()

    first = scan()
    ids, sizes, skipped, _ = first
    assert len(ids) == 6 + 9 and (10000, 10000) in sizes and (16000, 16000) in sizes
    assert {s.source.split("/")[-1]: s.reason for s in skipped} == {
        **{f"big17000_{c}.png": _too_large(17000, 17000, 2**28) for c in range(3)},
        "j20000.jpg": _too_large(20000, 20000, 2**28),
        "j60000.jpg": "image too large (more than 268435456 pixels; raise --max-pixels)",
        "t.tif": _too_large(100000, 100000, 2**28),
    }
    for _ in range(24):
        assert scan() == first
    lowered = resolve_sources(str(root), patch=32, threads=8, max_pixels=10**6)
    assert lowered.ids == tuple(f"mixed/p{i}.png" for i in range(6))


# ------------------------------------------------------------------------------------ options


def test_max_pixels_option_errors(tmp_path: Path) -> None:
    for bad in (0, -5, True, 2.5):
        with pytest.raises(RawSynthError) as info:
            resolve_sources("samples", patch=16, max_pixels=bad)
        assert str(info.value) == f"--max-pixels: expected an integer >= 1, got {bad!r}"
    with pytest.raises(RawSynthError) as info:
        check_config(GenerateConfig(n=1, out=str(tmp_path), max_pixels=0))
    assert str(info.value) == "--max-pixels: expected an integer >= 1, got 0"
    with pytest.raises(RawSynthError, match=r"^.*a\.png: max_pixels must be an integer >= 1, got 0$"):
        decode_image(tmp_path / "a.png", max_pixels=0)


def test_workers_decode_with_the_sources_limit(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _photo(root / "a.png", 64, 64)
    src = resolve_sources(str(root), patch=32, max_pixels=5000)
    assert src.max_pixels == 5000 and src.ids == ("photos/a.png",)
    assert src.fingerprint() == resolve_sources(str(root), patch=32).fingerprint()  # same usable items
    tight = replace(src, max_pixels=1000)  # as if the file had grown since the scan
    with pytest.raises(RawSynthError, match=r"photos/a\.png: image too large \(64x64 = 4096 pixels > limit 1000;"):
        tight.load_patch(0, seed=0, patch=32, rng=np.random.default_rng(0))


# ------------------------------------------------------------------------------------ generate


def _config(out: Path, src: Path, **changes) -> GenerateConfig:
    base = dict(n=4, patch=16, shard_size=2, cameras="sidd-s6", seed=1, workers=1, engine="upi")
    return GenerateConfig(out=str(out), src=str(src), **{**base, **changes})


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _sources_used(out: Path) -> set[str]:
    with open_shards(out) as ds:
        return {ds[i]["source"] for i in range(len(ds))}


def test_a_decoder_failure_skips_and_records_the_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "photos"
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        _photo(root / name, seed=i)
    real = images.decode_image

    def flaky(path, downscale=1, **kwargs):
        name = Path(path).name
        if name == "b.png":
            raise MemoryError
        if name == "c.png":
            raise RuntimeError("codec\nexploded")
        return real(path, downscale, **kwargs)

    monkeypatch.setattr(images, "decode_image", flaky)
    out = tmp_path / "store"
    summary = generate(_config(out, root), progress=False)
    assert summary.n_written == 4
    skipped = _manifest(out)["skipped"]
    assert {"source": "photos/b.png", "reason": "out of memory while decoding (MemoryError)"} in skipped
    assert {"source": "photos/c.png", "reason": "cannot decode image (RuntimeError: codec exploded)"} in skipped
    assert _sources_used(out) == {"photos/a.png"}
    assert verify_store(out).ok


def test_memory_error_inside_the_decoder_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = _photo(tmp_path / "a.png")

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(images, "_decode", out_of_memory)
    with pytest.raises(RawSynthError) as info:
        decode_image(photo)
    assert str(info.value) == f"{photo}: out of memory while decoding (MemoryError)"
    result = CliRunner().invoke(main, ["convert", str(photo), "--out", str(tmp_path / "dng")])
    assert result.exit_code == 2
    assert result.output == f"error: {photo}: out of memory while decoding (MemoryError)\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symbolic links")
def test_folder_entries_that_are_not_files_are_recorded(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _photo(root / "a.png", seed=1)
    _photo(root / "dir.jpg" / "inner.png", seed=2)  # the folder named like an image is walked, not read
    os.mkfifo(root / "pipe.jpg")
    (root / "broken.png").symlink_to(root / "missing.png")
    (root / "loop1.jpg").symlink_to(root / "loop2.jpg")
    (root / "loop2.jpg").symlink_to(root / "loop1.jpg")
    (root / "alias.png").symlink_to(root / "a.png")
    (root / "up.jpg").symlink_to(root)  # a link to a folder: listed, never followed
    expected = [
        {"source": "photos/broken.png", "reason": "broken symbolic link"},
        {"source": "photos/dir.jpg", "reason": "is a directory"},
        {"source": "photos/loop1.jpg", "reason": "symbolic link loop"},
        {"source": "photos/loop2.jpg", "reason": "symbolic link loop"},
        {"source": "photos/pipe.jpg", "reason": "not a regular file (FIFO)"},
        {"source": "photos/up.jpg", "reason": "is a directory"},
    ]

    def hung(signum, frame):
        raise TimeoutError("the folder scan blocked (a FIFO opened, or a link loop followed)")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    try:
        src = resolve_sources(str(root), patch=16)
        assert src.ids == ("photos/a.png", "photos/alias.png", "photos/dir.jpg/inner.png")
        assert [s.to_dict() for s in src.skipped] == expected
        out = tmp_path / "store"
        generate(_config(out, root), progress=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert _manifest(out)["skipped"] == expected
    assert _sources_used(out) <= {"photos/a.png", "photos/alias.png", "photos/dir.jpg/inner.png"}
    listing = tmp_path / "list.txt"
    listing.write_text("photos/pipe.jpg\nphotos/loop1.jpg\nphotos/broken.png\nphotos/a.png\n")
    by_list = resolve_sources(str(listing), patch=16)
    assert [(s.source, s.reason) for s in by_list.skipped] == [
        ("photos/pipe.jpg", "not a regular file (FIFO)"), ("photos/loop1.jpg", "symbolic link loop"),
        ("photos/broken.png", "broken symbolic link")]
    by_glob = resolve_sources(str(root / "*"), patch=16)
    assert [(Path(s.source).name, s.reason) for s in by_glob.skipped] == [
        (Path(e["source"]).name, e["reason"]) for e in expected]
    assert [Path(i).name for i in by_glob.ids] == ["a.png", "alias.png"]


def test_a_store_written_before_max_pixels_resumes(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for i in range(2):
        _photo(root / f"p{i}.png", seed=i)
    out = tmp_path / "store"
    generate(_config(out, root), progress=False)
    manifest = _manifest(out)
    assert manifest["config"]["max_pixels"] == 2**28
    del manifest["config"]["max_pixels"]  # what an older raw-synth wrote
    (out / "manifest.json").write_text(json.dumps(manifest))
    summary = generate(_config(out, root), progress=False)
    assert (summary.n_written, summary.n_resumed) == (0, 4)
    with pytest.raises(RawSynthError, match=r"\(field max_pixels: 268435456 != 1000000\); use --overwrite"):
        generate(_config(out, root, max_pixels=10**6), progress=False)


# ------------------------------------------------------------------------------------ command line


def test_convert_refuses_a_bomb_in_one_line_in_a_real_process(tmp_path: Path) -> None:
    tiff = _tiff_bomb(tmp_path / "bomb.tif", 100000, 100000)
    done = subprocess.run([sys.executable, "-m", "raw_synth_cli", "convert", str(tiff), "--out", str(tmp_path / "d")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: {tiff}: {_too_large(100000, 100000, 2**28)}\n"  # no decoder chatter either


def test_convert_refuses_a_bomb_in_one_line(tmp_path: Path) -> None:
    tiff = _tiff_bomb(tmp_path / "bomb.tif", 100000, 100000)
    result = CliRunner().invoke(main, ["convert", str(tiff), "--out", str(tmp_path / "dng")])
    assert result.exit_code == 2
    assert result.output == f"error: {tiff}: {_too_large(100000, 100000, 2**28)}\n"
    png = _png_bomb(tmp_path / "bomb.png", 10000, 10000)
    result = CliRunner().invoke(main, ["convert", str(png), "--out", str(tmp_path / "dng"), "--max-pixels", "1000000"])
    assert result.exit_code == 2
    assert result.output == f"error: {png}: {_too_large(10000, 10000, 10**6)}\n"
    assert not list((tmp_path / "dng").glob("*.dng"))


def _cli_store(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "photos"
    for i in range(2):
        _photo(root / f"p{i}.png", seed=i)
    _photo(root / "big.png", 1200, 1000)  # 1.2 Mpx: over the --max-pixels below
    out = tmp_path / "store"
    result = CliRunner().invoke(main, ["generate", "--n", "4", "--out", str(out), "--src", str(root), "--patch", "16",
                                       "--shard-size", "2", "--workers", "1", "--cameras", "sidd-s6",
                                       "--max-pixels", "1000000"])
    assert result.exit_code == 0, result.output
    return root, out


def test_generate_cli_records_max_pixels(tmp_path: Path) -> None:
    _, out = _cli_store(tmp_path)
    assert _manifest(out)["config"]["max_pixels"] == 10**6


def test_generate_cli_skips_images_over_max_pixels(tmp_path: Path) -> None:
    _, out = _cli_store(tmp_path)
    assert {"source": "photos/big.png", "reason": _too_large(1200, 1000, 10**6)} in _manifest(out)["skipped"]
    assert "photos/big.png" not in _sources_used(out)
