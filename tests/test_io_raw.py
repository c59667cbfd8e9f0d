"""Tests for raw_synth.io.raw (RawImage, read_raw) and raw_synth.io.mosaic_files (read_mosaic)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import rawpy
import tifffile
from PIL import Image

from raw_synth.cfa import pack, unpack
from raw_synth.errors import RawSynthError
from raw_synth.io import RawImage, read_mosaic, read_raw
from tests.conftest import shared_file

RNG = np.random.default_rng(7)


def _minimal_dng(path: Path, mosaic: np.ndarray, cfa_bytes: bytes, black: int, white: int) -> Path:
    """A bare-bones DNG written directly with tifffile (independent of raw_synth.io.dng)."""
    tags = [
        (33421, "H", 2, (2, 2), True),
        (33422, "B", 4, cfa_bytes, True),
        (50706, "B", 4, bytes((1, 4, 0, 0)), True),
        (50708, "s", 0, "Test", True),
        (50714, "I", 1, black, True),
        (50717, "I", 1, white, True),
    ]
    tifffile.imwrite(path, mosaic, photometric=32803, subfiletype=0, metadata=None, extratags=tags)
    return path


# ---------------------------------------------------------------- RawImage


def test_from_mosaic_normalises_per_plane_without_clipping() -> None:
    mosaic = np.array([[10, 200, 60, 1100], [70, 300, 0, 90]], dtype=np.uint16)
    raw = RawImage.from_mosaic(mosaic, "GRBG", (10, 20, 30, 40), 1010)
    assert raw.packed.dtype == np.float32 and raw.packed.shape == (4, 1, 2)
    # GRBG: R at (0, 1), Gr at (0, 0), Gb at (1, 1), B at (1, 0)
    np.testing.assert_allclose(raw.packed[0], [[(200 - 10) / 1000, (1100 - 10) / 1000]], rtol=1e-6)
    np.testing.assert_allclose(raw.packed[1], [[(10 - 20) / 990, (60 - 20) / 990]], rtol=1e-6)
    np.testing.assert_allclose(raw.packed[2], [[(300 - 30) / 980, (90 - 30) / 980]], rtol=1e-6)
    np.testing.assert_allclose(raw.packed[3], [[(70 - 40) / 970, (0 - 40) / 970]], rtol=1e-6)
    assert raw.packed.min() < 0 and raw.packed.max() > 1
    np.testing.assert_array_equal(raw.mosaic_dn(), mosaic)
    assert (raw.height, raw.width) == (2, 4)


def test_constructor_coerces_fields() -> None:
    raw = RawImage(np.zeros((4, 2, 3), dtype=np.float64), "rggb", 64, 1023, noise_profile=(1e-3, 2e-5), iso=100)
    assert raw.packed.dtype == np.float32
    assert raw.cfa == "RGGB"
    assert raw.black_level == (64.0, 64.0, 64.0, 64.0) and raw.white_level == 1023.0
    assert raw.noise_profile == ((1e-3, 2e-5),) * 4
    assert raw.iso == 100.0 and raw.wb is None and raw.xyz_to_cam is None


def test_matrix_is_a_read_only_copy() -> None:
    matrix = np.eye(3)
    raw = RawImage(np.zeros((4, 1, 1)), "RGGB", 0, 1, xyz_to_cam=matrix)
    matrix[0, 0] = 5.0
    assert raw.xyz_to_cam[0, 0] == 1.0 and not raw.xyz_to_cam.flags.writeable


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"packed": np.zeros((3, 2, 2))}, "packed RAW must have shape (4, h, w), got (3, 2, 2)"),
        ({"cfa": "RGBG"}, "unknown CFA pattern 'RGBG': expected one of RGGB, GRBG, GBRG, BGGR"),
        ({"black_level": (1, 2, 3)}, "black_level must be one value or four (R, Gr, Gb, B), got 3"),
        ({"white_level": 64}, "white_level 64 must be greater than every black level (64, 64, 64, 64)"),
        ({"white_level": float("nan")}, "white_level must be finite, got nan"),
        ({"wb": (2, 1, 1, 0)}, "wb gains must be positive, got (2, 1, 1, 0)"),
        ({"xyz_to_cam": np.eye(4)}, "xyz_to_cam must be a finite 3x3 matrix, got shape (4, 4)"),
        ({"noise_profile": [(1, 2, 3)]}, "noise_profile must be one (shot, read) pair or four, got shape (1, 3)"),
        ({"iso": -100}, "iso must be positive, got -100"),
    ],
)
def test_raw_image_validation(kwargs: dict, message: str) -> None:
    fields = {"packed": np.zeros((4, 2, 2)), "cfa": "RGGB", "black_level": 64, "white_level": 1023, **kwargs}
    with pytest.raises(RawSynthError) as info:
        RawImage(**fields)
    assert str(info.value) == message


# ---------------------------------------------------------------- read_raw on real files


@pytest.fixture(scope="module")
def canon(shared_data: Path) -> tuple[Path, RawImage]:
    path = shared_file(shared_data, "tinydng-canon550d/colorchart.dng")
    return path, read_raw(path)


def test_canon_dng_matches_rawpy(canon: tuple[Path, RawImage]) -> None:
    path, raw = canon
    with rawpy.imread(str(path)) as reference:
        visible = reference.raw_image_visible.copy()
        assert reference.black_level_per_channel == [2056] * 4 and reference.white_level == 15000
    assert visible.shape == (1156, 1734)
    assert raw.packed.shape == (4, 578, 867)
    assert raw.cfa == "RGGB"
    assert raw.black_level == (2056.0,) * 4 and raw.white_level == 15000.0
    np.testing.assert_array_equal(raw.mosaic_dn(), visible)
    np.testing.assert_allclose(raw.packed, (pack(visible, "RGGB") - 2056.0) / (15000 - 2056), rtol=1e-6, atol=1e-7)
    assert raw.source == str(path)


def test_canon_dng_metadata(canon: tuple[Path, RawImage]) -> None:
    _, raw = canon
    # AsShotNeutral (1.000, 2.477, 1.462): gains 2.477 / 1, 2.477 / 1.462 relative to green
    assert raw.wb == pytest.approx((2.477, 1.0, 1.0, 2.477 / 1.462), rel=1e-12)
    expected = [[0.6461, -0.1164, -0.0857], [-0.3825, 1.1597, 0.2534], [-0.0416, 0.1540, 0.6039]]
    np.testing.assert_allclose(raw.xyz_to_cam, expected, rtol=0, atol=1e-12)
    assert raw.camera == "Canon EOS Kiss X4"
    assert raw.noise_profile is None and raw.iso is None  # ISO 0 in the file means unknown


def test_canon_wb_agrees_with_rawpy(canon: tuple[Path, RawImage]) -> None:
    path, raw = canon
    with rawpy.imread(str(path)) as reference:
        gains = reference.camera_whitebalance
    assert raw.wb == pytest.approx((gains[0] / gains[1], 1.0, 1.0, gains[2] / gains[1]), rel=1e-6)


def test_kodak_kdc(shared_data: Path) -> None:
    path = shared_file(shared_data, "rawpy-kodak-dc50/RAW_KODAK_DC50.KDC")
    raw = read_raw(path)
    with rawpy.imread(str(path)) as reference:
        visible = reference.raw_image_visible.copy()
    assert raw.cfa == "GRBG"
    assert raw.packed.shape == (4, 256, 384)
    assert raw.black_level == (0.0,) * 4 and raw.white_level == 16383.0
    np.testing.assert_array_equal(raw.mosaic_dn(), visible)
    np.testing.assert_allclose(raw.packed[0], visible[0::2, 1::2] / 16383.0, rtol=1e-6)
    assert raw.iso == 84.0
    assert raw.camera == "Eastman Kodak Company Kodak Digital Science DC50 Zoom Camera"
    assert raw.xyz_to_cam is None and raw.noise_profile is None


# ---------------------------------------------------------------- read_raw on generated files


@pytest.mark.parametrize("cfa,tile", [("RGGB", b"\x00\x01\x01\x02"), ("BGGR", b"\x02\x01\x01\x00")])
def test_odd_visible_size_is_cropped_to_even(tmp_path: Path, cfa: str, tile: bytes) -> None:
    mosaic = RNG.integers(64, 1023, (31, 45), dtype=np.uint16)  # LibRaw needs 22 pixels or more
    raw = read_raw(_minimal_dng(tmp_path / "odd.dng", mosaic, tile, 64, 1023))
    assert raw.packed.shape == (4, 15, 22) and raw.cfa == cfa
    np.testing.assert_array_equal(raw.mosaic_dn(), mosaic[:30, :44])
    assert raw.wb is None  # no AsShotNeutral: LibRaw reports no as-shot gains


def test_read_raw_missing(tmp_path: Path) -> None:
    path = tmp_path / "x.dng"
    with pytest.raises(RawSynthError, match=f"^{re.escape(str(path))}: file not found$"):
        read_raw(path)


def test_read_raw_not_raw(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(path)
    with pytest.raises(RawSynthError) as info:
        read_raw(path)
    assert str(info.value) == f"{path}: not a RAW file LibRaw can read (unsupported file format)"


def test_read_raw_truncated(tmp_path: Path) -> None:
    mosaic = RNG.integers(0, 4095, (256, 256), dtype=np.uint16)
    full = _minimal_dng(tmp_path / "full.dng", mosaic, b"\x00\x01\x01\x02", 0, 4095)
    cut = tmp_path / "cut.dng"
    cut.write_bytes(full.read_bytes()[:20000])
    pattern = rf"^{re.escape(str(cut))}: cannot read RAW file, truncated or corrupt \(Input/output error\)$"
    with pytest.raises(RawSynthError, match=pattern):
        read_raw(cut)


# ---------------------------------------------------------------- read_mosaic


def test_mosaic_npy_2d(tmp_path: Path) -> None:
    mosaic = RNG.integers(0, 4096, (6, 8), dtype=np.uint16)
    np.save(tmp_path / "m.npy", mosaic)
    raw = read_mosaic(tmp_path / "m.npy", "GBRG", [1, 2, 3, 4], 4095)
    np.testing.assert_allclose(raw.packed, (pack(mosaic, "GBRG") - np.array([1, 2, 3, 4.0])[:, None, None]) /
                               (4095 - np.array([1, 2, 3, 4.0])[:, None, None]), rtol=1e-6)
    assert raw.cfa == "GBRG" and raw.source == str(tmp_path / "m.npy")
    assert raw.wb is None and raw.camera is None


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_mosaic_npy_packed(tmp_path: Path, layout: str) -> None:
    planes = RNG.integers(0, 1024, (4, 3, 5)).astype(np.float32)
    np.save(tmp_path / "p.npy", planes if layout == "channels_first" else np.moveaxis(planes, 0, -1))
    raw = read_mosaic(tmp_path / "p.npy", "BGGR", 0, 1023)
    np.testing.assert_allclose(raw.packed, planes / 1023, rtol=1e-6)
    assert raw.cfa == "BGGR"


def test_mosaic_png16_and_tiff(tmp_path: Path) -> None:
    mosaic = RNG.integers(0, 65536, (4, 6), dtype=np.uint16)
    Image.fromarray(mosaic).save(tmp_path / "m.png")
    tifffile.imwrite(tmp_path / "m.tif", mosaic)
    for name in ("m.png", "m.tif"):
        raw = read_mosaic(tmp_path / name, "RGGB", 0, 65535)
        np.testing.assert_array_equal(raw.mosaic_dn(), mosaic)


def test_mosaic_headerless(tmp_path: Path) -> None:
    mosaic = RNG.integers(0, 1024, (4, 6)).astype(">u2")
    mosaic.tofile(tmp_path / "m.raw")
    raw = read_mosaic(tmp_path / "m.raw", "RGGB", 0, 1023, shape=(4, 6), dtype=">u2")
    np.testing.assert_array_equal(raw.mosaic_dn(), mosaic.astype(np.uint16))


def test_mosaic_n900_png(shared_data: Path) -> None:
    path = shared_file(shared_data, "halide-nokia-n900/bayer_small.png")
    raw = read_mosaic(path, "GRBG", 25, 1023)
    image = np.asarray(Image.open(path)).astype(np.float64)
    assert raw.packed.shape == (4, 172, 128)
    np.testing.assert_allclose(raw.packed[0], (image[0::2, 1::2] - 25) / 998, rtol=1e-6)  # R
    np.testing.assert_allclose(raw.packed[1], (image[0::2, 0::2] - 25) / 998, rtol=1e-6)  # Gr
    np.testing.assert_allclose(raw.packed[3], (image[1::2, 0::2] - 25) / 998, rtol=1e-6)  # B
    assert raw.packed.max() > 1  # raw max 1053 is above the white level: not clipped


def test_mosaic_openisp_headerless(shared_data: Path) -> None:
    path = shared_file(shared_data, "openisp-test-raw/test.RAW")
    raw = read_mosaic(path, "RGGB", 0, 1023, shape=(1080, 1920))
    reference = np.fromfile(path, "<u2").reshape(1080, 1920)
    np.testing.assert_array_equal(raw.mosaic_dn(), reference)
    assert raw.packed.shape == (4, 540, 960)


def test_mosaic_vivo_packed_npy(shared_data: Path) -> None:
    path = shared_file(shared_data, "aisp-vivo-x90/x90_3_4.npy")
    raw = read_mosaic(path, "RGGB", 0, 4095)
    reference = np.load(path)
    np.testing.assert_allclose(raw.packed, np.moveaxis(reference, -1, 0) / 4095, rtol=1e-6)


def _expect(path: Path, message: str, **kwargs) -> None:
    args = {"cfa": "RGGB", "black_level": 0, "white_level": 1023, **kwargs}
    with pytest.raises(RawSynthError) as info:
        read_mosaic(path, **args)
    assert str(info.value) == message.format(p=path)


def test_mosaic_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "odd.npy", np.zeros((5, 8), dtype=np.uint16))
    _expect(tmp_path / "odd.npy", "{p}: mosaic height and width must be even, got 5x8")
    np.save(tmp_path / "flat.npy", np.zeros(16, dtype=np.uint16))
    _expect(
        tmp_path / "flat.npy",
        "{p}: expected a 2-D mosaic (H, W) or a packed (4, h, w) / (h, w, 4) array, got shape (16,)",
    )
    np.save(tmp_path / "rgb.npy", np.zeros((6, 6, 3), dtype=np.uint16))
    _expect(
        tmp_path / "rgb.npy",
        "{p}: expected a 2-D mosaic (H, W) or a packed (4, h, w) / (h, w, 4) array, got shape (6, 6, 3)",
    )
    _expect(tmp_path / "odd.npy", "{p}: white_level 100 must be greater than every black level (0, 0, 100, 0)",
            black_level=[0, 0, 100, 0], white_level=100)
    _expect(tmp_path / "odd.npy", "{p}: black_level must be one value or four (R, Gr, Gb, B), got 2",
            black_level=[1, 2])
    _expect(tmp_path / "odd.npy", "{p}: unknown CFA pattern 'XYZW': expected one of RGGB, GRBG, GBRG, BGGR", cfa="XYZW")
    _expect(tmp_path / "none.npy", "{p}: file not found")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    _expect(tmp_path / "obj.npy", "{p}: .npy holds Python objects (refusing to unpickle)")


def test_mosaic_file_type_errors(tmp_path: Path) -> None:
    (tmp_path / "m.raw").write_bytes(b"\x00" * 48)
    _expect(tmp_path / "m.raw", "{p}: a headerless mosaic needs shape=(H, W) (and dtype, default '<u2')")
    _expect(tmp_path / "m.raw", "{p}: file has 48 bytes, expected 50 for shape (5, 5) and dtype <u2", shape=(5, 5))
    _expect(tmp_path / "m.raw", "{p}: mosaic height and width must be even, got 3x8", shape=(3, 8))
    (tmp_path / "m.dat").write_bytes(b"\x00" * 8)
    _expect(tmp_path / "m.dat",
            "{p}: unsupported mosaic file type '.dat': expected .npy, .png, .tif, .tiff or shape=(H, W)")
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    _expect(tmp_path / "rgb.png", "{p}: expected a single-channel mosaic image, got mode RGB")
    (tmp_path / "bad.png").write_text("not a png")
    _expect(tmp_path / "bad.png", "{p}: not an image file (cannot identify image format)")


def test_read_mosaic_does_not_share_memory_with_caller(tmp_path: Path) -> None:
    planes = np.ones((4, 2, 2), dtype=np.float32)
    np.save(tmp_path / "p.npy", planes)
    raw = read_mosaic(tmp_path / "p.npy", "RGGB", 0, 1)
    np.testing.assert_array_equal(unpack(raw.packed, "RGGB"), np.ones((4, 4)))
