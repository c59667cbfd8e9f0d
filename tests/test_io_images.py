"""Tests for raw_synth.io.images: read_image / write_image on every kind of input."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from raw_synth.errors import RawSynthError
from raw_synth.io import read_image, write_image
from raw_synth.io.images import apply_orientation

RNG = np.random.default_rng(1234)


def _rgb8(height: int = 24, width: int = 36) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _quadrants(height: int = 20, width: int = 30) -> np.ndarray:
    """An image whose four quadrants have distinct pure colours (orientation is visible)."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[: height // 2, : width // 2] = (255, 0, 0)
    image[: height // 2, width // 2 :] = (0, 255, 0)
    image[height // 2 :, : width // 2] = (0, 0, 255)
    image[height // 2 :, width // 2 :] = (255, 255, 255)
    return image


def _png16(path: Path, data: np.ndarray, colour_type: int) -> Path:
    """Encode uint16 data as PNG, cycling row filters 0..4 (exercises every unfilter path)."""
    height, width = data.shape[:2]
    raw = data.astype(">u2").view(np.uint8).reshape(height, width, -1).astype(np.int64)
    bpp = raw.shape[-1]
    rows = []
    for y in range(height):
        kind = y % 5
        line = raw[y].reshape(-1)
        prior = raw[y - 1].reshape(-1) if y else np.zeros_like(line)
        left = np.concatenate([np.zeros(bpp, dtype=np.int64), line[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, dtype=np.int64), prior[:-bpp]])
        if kind == 0:
            pred = np.zeros_like(line)
        elif kind == 1:
            pred = left
        elif kind == 2:
            pred = prior
        elif kind == 3:
            pred = (left + prior) // 2
        else:
            p = left + prior - upleft
            pa, pb, pc = abs(p - left), abs(p - prior), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prior, upleft))
        rows.append(bytes([kind]) + ((line - pred) & 0xFF).astype(np.uint8).tobytes())

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
    return path


# ---------------------------------------------------------------- 8-bit and Pillow modes


def test_rgb8_png_exact(tmp_path: Path) -> None:
    rgb = _rgb8()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.float32 and out.shape == (24, 36, 3)
    np.testing.assert_array_equal(out, (rgb / 255.0).astype(np.float32))


def test_jpeg_matches_pillow_decode(tmp_path: Path) -> None:
    Image.fromarray(_rgb8()).save(tmp_path / "a.jpg", quality=90)
    expected = np.asarray(Image.open(tmp_path / "a.jpg").convert("RGB")) / 255.0
    np.testing.assert_array_equal(read_image(str(tmp_path / "a.jpg")), expected.astype(np.float32))


def test_grayscale_is_replicated(tmp_path: Path) -> None:
    gray = RNG.integers(0, 256, (10, 14), dtype=np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (10, 14, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], (gray / 255.0).astype(np.float32))


def test_bilevel_image(tmp_path: Path) -> None:
    bits = RNG.integers(0, 2, (8, 16)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "b.png")
    out = read_image(tmp_path / "b.png")
    np.testing.assert_array_equal(out[..., 1], bits.astype(np.float32))


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_dropped_not_composited(tmp_path: Path, mode: str) -> None:
    rgb = _rgb8()
    alpha = RNG.integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    alpha[0, 0] = 0  # fully transparent pixel keeps its colour
    if mode == "RGBA":
        Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "a.png")
        expected = rgb / 255.0
    else:
        Image.fromarray(np.dstack([rgb[..., 0], alpha]), mode="LA").save(tmp_path / "a.png")
        expected = np.repeat(rgb[..., :1], 3, axis=-1) / 255.0
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), expected.astype(np.float32))


def test_palette_with_transparency(tmp_path: Path) -> None:
    palette_rgb = np.array([[10, 20, 30], [200, 100, 50], [0, 255, 0]], dtype=np.uint8)
    index = RNG.integers(0, 3, (12, 9), dtype=np.uint8)
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette_rgb.reshape(-1).tolist())
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    assert Image.open(tmp_path / "p.png").mode == "P"
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), (palette_rgb[index] / 255.0).astype(np.float32))


@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_cmyk_converted_by_pillow(tmp_path: Path, suffix: str) -> None:
    Image.fromarray(_rgb8()).convert("CMYK").save(tmp_path / f"c{suffix}")
    with Image.open(tmp_path / f"c{suffix}") as image:
        assert image.mode == "CMYK"
        expected = np.asarray(image.convert("RGB")) / 255.0
    out = read_image(tmp_path / f"c{suffix}")
    assert out.shape == (24, 36, 3)
    np.testing.assert_array_equal(out, expected.astype(np.float32))


# ---------------------------------------------------------------- 16-bit and float


@pytest.mark.parametrize("colour_type,channels", [(0, 1), (2, 3), (4, 2), (6, 4)])
def test_png16_every_colour_type_and_filter(tmp_path: Path, colour_type: int, channels: int) -> None:
    data = RNG.integers(0, 65536, (13, 11, channels), dtype=np.uint16)
    data[0, 0] = 65535
    path = _png16(tmp_path / "x.png", data[..., 0] if channels == 1 else data, colour_type)
    out = read_image(path)
    colour = np.repeat(data[..., :1], 3, axis=-1) if channels <= 2 else data[..., :3]
    np.testing.assert_array_equal(out, (colour / 65535.0).astype(np.float32))


def test_png16_gray_written_by_pillow_matches_pillow(tmp_path: Path) -> None:
    gray = RNG.integers(0, 65536, (17, 23), dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as image:
        pillow = np.asarray(image).astype(np.float64)
    out = read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[..., 2], (pillow / 65535.0).astype(np.float32))
    np.testing.assert_array_equal(out[..., 0], (gray / 65535.0).astype(np.float32))


@pytest.mark.parametrize("shape", [(9, 7, 3), (9, 7), (9, 7, 4)])
def test_tiff16_exact(tmp_path: Path, shape: tuple[int, ...]) -> None:
    data = RNG.integers(0, 65536, shape, dtype=np.uint16)
    photometric = "minisblack" if len(shape) == 2 else "rgb"
    extra = {"extrasamples": [2]} if shape[-1] == 4 and len(shape) == 3 else {}
    tifffile.imwrite(tmp_path / "t.tif", data, photometric=photometric, **extra)
    out = read_image(tmp_path / "t.tif")
    colour = data[..., :3] if len(shape) == 3 else np.repeat(data[..., None], 3, axis=-1)
    np.testing.assert_array_equal(out, (colour / 65535.0).astype(np.float32))


def test_float_tiff_is_clipped(tmp_path: Path) -> None:
    data = np.array([[[-0.5, 0.25, 1.5], [0.5, 0.75, 1.0]]], dtype=np.float32)
    tifffile.imwrite(tmp_path / "f.tif", data, photometric="rgb")
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif"), np.clip(data, 0, 1))


def test_tiff16_orientation_applied(tmp_path: Path) -> None:
    data = RNG.integers(0, 65536, (6, 10, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "o.tif", data, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    out = read_image(tmp_path / "o.tif")
    np.testing.assert_array_equal(out, (np.rot90(data, k=-1) / 65535.0).astype(np.float32))


# ---------------------------------------------------------------- EXIF orientation


def test_exif_rotated_jpeg_orientation_6(tmp_path: Path) -> None:
    source = _quadrants(20, 30)
    image = Image.fromarray(source)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "r.jpg", exif=exif, quality=95)
    with Image.open(tmp_path / "r.jpg") as stored:
        assert stored.getexif()[0x0112] == 6
        stored_rgb = np.asarray(stored.convert("RGB")) / 255.0
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (30, 20, 3)  # rotated 90 degrees clockwise for display
    np.testing.assert_array_equal(out, np.rot90(stored_rgb, k=-1).astype(np.float32))
    # the blue bottom-left quadrant is now top-left, the red top-left quadrant top-right
    np.testing.assert_allclose(out[2, 2], (0, 0, 1), atol=0.03)
    np.testing.assert_allclose(out[2, -3], (1, 0, 0), atol=0.03)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(tmp_path: Path, orientation: int) -> None:
    image = Image.fromarray(_rgb8(6, 10))
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(tmp_path / "o.png", exif=exif)
    with Image.open(tmp_path / "o.png") as stored:
        expected = np.asarray(ImageOps.exif_transpose(stored).convert("RGB")) / 255.0
    np.testing.assert_array_equal(read_image(tmp_path / "o.png"), expected.astype(np.float32))


def test_apply_orientation_unknown_value_is_identity() -> None:
    array = np.arange(6).reshape(2, 3)
    assert apply_orientation(array, 0) is array
    np.testing.assert_array_equal(apply_orientation(array, 6), [[3, 0], [4, 1], [5, 2]])


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    with pytest.raises(RawSynthError, match=f"^{re.escape(str(path))}: file not found$"):
        read_image(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(RawSynthError, match=f"^{re.escape(str(tmp_path))}: not a file$"):
        read_image(tmp_path)


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_text("hello, not a picture")
    with pytest.raises(RawSynthError) as info:
        read_image(path)
    assert str(info.value) == f"{path}: not an image file (cannot identify image format)"


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_8bit(tmp_path: Path, suffix: str) -> None:
    full = tmp_path / f"full{suffix}"
    Image.fromarray(_rgb8(64, 64)).save(full)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    pattern = (rf"^{re.escape(str(cut))}: truncated or corrupt image "
               rf"\(image file is truncated( \(\d+ bytes not processed\))?\)$")
    with pytest.raises(RawSynthError, match=pattern):
        read_image(cut)


def test_truncated_png16(tmp_path: Path) -> None:
    full = write_image(tmp_path / "full.png", RNG.random((40, 40, 3)), bits=16)
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(RawSynthError,
                       match=rf"^{re.escape(str(cut))}: truncated or corrupt image \(image file is truncated\)$"):
        read_image(cut)


# ---------------------------------------------------------------- writing


def test_write_png8_round_trip(tmp_path: Path) -> None:
    rgb = RNG.random((10, 12, 3)).astype(np.float32)
    path = write_image(tmp_path / "w.png", rgb)
    assert path == tmp_path / "w.png"
    np.testing.assert_array_equal(np.asarray(Image.open(path)), np.round(rgb.astype(np.float64) * 255).astype(np.uint8))


def test_write_clips_out_of_range(tmp_path: Path) -> None:
    rgb = np.array([[[-0.2, 0.5, 1.7]]])
    np.testing.assert_array_equal(np.asarray(Image.open(write_image(tmp_path / "c.png", rgb))), [[[0, 128, 255]]])


def test_write_png16_round_trip(tmp_path: Path) -> None:
    rgb = RNG.random((9, 13, 3))
    out = read_image(write_image(tmp_path / "w16.png", rgb, bits=16))
    np.testing.assert_array_equal(out, (np.round(rgb * 65535) / 65535).astype(np.float32))


def test_write_tiff16_and_uint16_passthrough(tmp_path: Path) -> None:
    codes = RNG.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    path = write_image(tmp_path / "w.tiff", codes, bits=16)
    np.testing.assert_array_equal(tifffile.imread(path), codes)


def test_write_jpeg(tmp_path: Path) -> None:
    rgb = np.full((16, 16, 3), 0.5)
    out = read_image(write_image(tmp_path / "w.jpg", rgb, quality=95))
    np.testing.assert_allclose(out, 128 / 255, atol=1.5 / 255)


@pytest.mark.parametrize(
    "name,array,bits,message",
    [
        ("x.gif", np.zeros((2, 2, 3)), 8,
         "{p}: unknown image format '.gif': expected .png, .jpg, .jpeg, .tif or .tiff"),
        ("x.jpg", np.zeros((2, 2, 3)), 16, "{p}: JPEG supports 8 bits only, got bits=16"),
        ("x.png", np.zeros((2, 2, 3)), 12, "{p}: bits must be 8 or 16, got 12"),
        ("x.png", np.zeros((2, 2)), 8, "{p}: image must have shape (H, W, 3), got (2, 2)"),
        ("x.png", np.full((2, 2, 3), np.nan), 8, "{p}: image contains NaN or infinite values"),
        (
            "x.png",
            np.zeros((2, 2, 3), dtype=np.uint16),
            8,
            "{p}: image dtype uint16 does not match bits=8: pass floats in [0, 1] or uint8",
        ),
    ],
)
def test_write_errors(tmp_path: Path, name: str, array: np.ndarray, bits: int, message: str) -> None:
    path = tmp_path / name
    with pytest.raises(RawSynthError) as info:
        write_image(path, array, bits=bits)  # type: ignore[arg-type]
    assert str(info.value) == message.format(p=path)
    assert not path.exists()


def test_write_does_not_mutate_input(tmp_path: Path) -> None:
    rgb = RNG.random((4, 4, 3)) * 1.5
    before = rgb.copy()
    write_image(tmp_path / "m.png", rgb)
    np.testing.assert_array_equal(rgb, before)
