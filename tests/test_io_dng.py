"""Tests for raw_synth.io.dng.write_dng, checked against rawpy/LibRaw, tifffile and read_raw."""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rawpy
import tifffile

from raw_synth.cfa import CFA_PATTERNS, cfa_from_raw_pattern, site_offsets
from raw_synth.errors import RawSynthError
from raw_synth.io import RawImage, read_raw, write_dng
from raw_synth.io.dng import SRGB_XYZ_TO_CAM
from tests.conftest import shared_file

RNG = np.random.default_rng(99)

#: sRGB (D65) -> XYZ, as LibRaw's ``xyz_rgb`` constant.
SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
CANON_MATRIX = np.array([[0.6461, -0.1164, -0.0857], [-0.3825, 1.1597, 0.2534], [-0.0416, 0.1540, 0.6039]])


def _libraw_rgb_cam(xyz_to_cam: np.ndarray) -> np.ndarray:
    """LibRaw's camera->sRGB matrix for a DNG ColorMatrix: inverse of row-normalised cam_rgb."""
    cam_rgb = xyz_to_cam @ SRGB_TO_XYZ
    cam_rgb = cam_rgb / cam_rgb.sum(axis=1, keepdims=True)
    return np.linalg.inv(cam_rgb)


def _sample(cfa: str, height: int = 48, width: int = 64) -> RawImage:
    black = (60.0, 61.0, 62.0, 63.0)
    white = 4000.0
    dn = RNG.integers(0, 4096, (4, height // 2, width // 2)).astype(np.float64)
    packed = ((dn - np.array(black)[:, None, None]) / (white - np.array(black)[:, None, None])).astype(np.float32)
    return RawImage(
        packed,
        cfa,
        black,
        white,
        wb=(2.1, 1.0, 1.0, 1.55),
        xyz_to_cam=CANON_MATRIX,
        noise_profile=((1e-3, 2e-5), (8e-4, 1.5e-5), (8e-4, 1.5e-5), (1.2e-3, 2.5e-5)),
        iso=800,
        camera="Test Camera X1",
    )


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_rawpy_reads_what_was_written(tmp_path: Path, cfa: str) -> None:
    image = _sample(cfa)
    path = write_dng(tmp_path / f"{cfa}.dng", image)
    assert path == tmp_path / f"{cfa}.dng"
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image, image.mosaic_dn())
        assert raw.raw_image.shape == (48, 64)
        assert cfa_from_raw_pattern(raw.raw_pattern, raw.color_desc.decode()) == cfa
        # black_level_per_channel is indexed by colour index; map it back to plane order
        per_plane = [raw.black_level_per_channel[raw.raw_pattern[dy, dx]] for dy, dx in site_offsets(cfa)]
        assert per_plane == [60, 61, 62, 63]
        assert raw.white_level == 4000
        gains = raw.camera_whitebalance
        assert gains[0] / gains[1] == pytest.approx(2.1, rel=1e-6)
        assert gains[2] / gains[1] == pytest.approx(1.55, rel=1e-6)
        assert gains[3] in (0.0, gains[1])
        # LibRaw keeps a DNG's ColorMatrix out of rgb_xyz_matrix (all zero in LibRaw 0.22); it
        # derives color_matrix (camera -> sRGB) from it, which pins the matrix down.
        np.testing.assert_allclose(raw.color_matrix[:, :3], _libraw_rgb_cam(CANON_MATRIX), rtol=0, atol=1e-6)
        if np.any(raw.rgb_xyz_matrix):
            np.testing.assert_allclose(raw.rgb_xyz_matrix[:3], CANON_MATRIX, atol=1e-6)
        assert raw.postprocess().shape == (48, 64, 3)


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_read_raw_round_trip(tmp_path: Path, cfa: str) -> None:
    image = _sample(cfa)
    back = read_raw(write_dng(tmp_path / "x.dng", image))
    np.testing.assert_array_equal(back.mosaic_dn(), image.mosaic_dn())
    np.testing.assert_allclose(back.packed, image.packed, rtol=0, atol=1e-7)
    assert back.cfa == cfa
    assert back.black_level == image.black_level and back.white_level == image.white_level
    assert back.wb == pytest.approx(image.wb, rel=1e-9)
    np.testing.assert_allclose(back.xyz_to_cam, image.xyz_to_cam, rtol=1e-9)
    assert back.noise_profile == image.noise_profile  # DOUBLE tags are exact
    assert back.iso == 800.0 and back.camera == "Test Camera X1"
    assert back.source == str(tmp_path / "x.dng")


def test_dng_tags(tmp_path: Path) -> None:
    path = write_dng(tmp_path / "t.dng", _sample("GRBG"))
    with tifffile.TiffFile(path) as tif:
        assert tif.byteorder == "<" and len(tif.pages) == 1
        page = tif.pages[0]
        tags = {tag.code: tag.value for tag in page.tags.values()}
    assert tags[254] == 0 and tags[262] == 32803 and tags[258] == 16 and tags[277] == 1 and tags[259] == 1
    assert tags[50706] == bytes((1, 4, 0, 0)) and tags[50707] == bytes((1, 1, 0, 0))
    assert tags[33421] == (2, 2) and tags[33422] == bytes((1, 0, 2, 1))
    assert tags[50710] == bytes((0, 1, 2)) and tags[50711] == 1
    assert tags[50713] == (2, 2) and tags[50714] == (61, 60, 63, 62)  # GRBG sites: Gr R / B Gb
    assert tags[50717] == 4000 and tags[50778] == 21
    assert tags[50708] == "Test Camera X1" and tags[272] == "Test Camera X1"
    # the ISO sits in the Exif IFD only (tifffile parses it into a dict), not in IFD 0
    assert tags[34665] == {"ISOSpeedRatings": 800, "ExifVersion": "0231"} and 34855 not in tags
    neutral = np.array(tags[50728], dtype=float)
    np.testing.assert_allclose(neutral[0::2] / neutral[1::2], [1 / 2.1, 1.0, 1 / 1.55], rtol=1e-9)
    # one NoiseProfile pair per colour (R, G, B); the equal greens are stored once
    assert tags[51041] == (1e-3, 2e-5, 8e-4, 1.5e-5, 1.2e-3, 2.5e-5)


def test_postprocess_renders_neutral_grey(tmp_path: Path) -> None:
    """A flat patch at the camera's neutral response renders grey with the as-shot WB."""
    wb = (2.0, 1.0, 1.0, 1.6)
    packed = np.stack([np.full((32, 32), 0.3 / g, dtype=np.float32) for g in wb])
    image = RawImage(packed, "GBRG", (100, 110, 120, 130), 4095, wb=wb, xyz_to_cam=CANON_MATRIX)
    with rawpy.imread(str(write_dng(tmp_path / "grey.dng", image))) as raw:
        rgb = raw.postprocess(use_camera_wb=True, no_auto_bright=True, gamma=(1, 1), output_bps=16)
    centre = rgb[8:-8, 8:-8].reshape(-1, 3).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(centre / centre[1], [1.0, 1.0, 1.0], atol=0.01)


def test_defaults_without_optional_metadata(tmp_path: Path) -> None:
    packed = RNG.random((4, 16, 16)).astype(np.float32)
    image = RawImage(packed, "BGGR", 0, 1023)
    path = write_dng(tmp_path / "bare.dng", image)
    with tifffile.TiffFile(path) as tif:
        tags = {tag.code for tag in tif.pages[0].tags.values()}
    assert {50728, 51041, 34855, 34665, 34664, 272}.isdisjoint(tags)
    back = read_raw(path)
    assert back.wb is None and back.noise_profile is None and back.iso is None and back.camera is None
    np.testing.assert_allclose(back.xyz_to_cam, SRGB_XYZ_TO_CAM, rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(back.mosaic_dn(), image.mosaic_dn())


def test_single_pair_noise_profile_and_clipping(tmp_path: Path) -> None:
    packed = np.zeros((4, 12, 12), dtype=np.float32)
    packed[0, 0, 0], packed[1, 0, 0] = -1.0, 100.0  # far below black, far above 65535 DN
    image = RawImage(packed, "RGGB", 64, 1023, noise_profile=(2e-4, 3e-6))
    path = write_dng(tmp_path / "np.dng", image)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].tags[51041].value == (2e-4, 3e-6)
    with rawpy.imread(str(path)) as raw:
        assert raw.raw_image[0, 0] == 0 and raw.raw_image[0, 1] == 65535
    assert read_raw(path).noise_profile == ((2e-4, 3e-6),) * 4


def test_unequal_greens_are_averaged_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    image = RawImage(
        np.zeros((4, 12, 12)), "RGGB", 0, 1023, noise_profile=((1e-3, 1e-5), (2e-3, 2e-5), (4e-3, 4e-5), (5e-3, 5e-5))
    )
    with caplog.at_level(logging.WARNING, logger="raw_synth.io.dng"):
        back = read_raw(write_dng(tmp_path / "g.dng", image))
    assert "noise_profile shot differs between Gr and Gb (0.002, 0.004); DNG stores their mean" in caplog.text
    assert back.noise_profile[1] == back.noise_profile[2] == pytest.approx((3e-3, 3e-5))


def test_canon_write_back_is_identical(tmp_path: Path, shared_data: Path) -> None:
    source = shared_file(shared_data, "tinydng-canon550d/colorchart.dng")
    original = read_raw(source)
    copy_path = write_dng(tmp_path / "canon.dng", original)
    copy = read_raw(copy_path)
    np.testing.assert_array_equal(copy.packed, original.packed)
    for field in ("cfa", "black_level", "white_level", "noise_profile", "iso", "camera"):
        assert getattr(copy, field) == getattr(original, field), field
    assert copy.wb == pytest.approx(original.wb, rel=1e-9)
    np.testing.assert_allclose(copy.xyz_to_cam, original.xyz_to_cam, rtol=0, atol=1e-12)
    with rawpy.imread(str(source)) as a, rawpy.imread(str(copy_path)) as b:
        np.testing.assert_array_equal(b.raw_image, a.raw_image_visible)
        assert b.black_level_per_channel == a.black_level_per_channel and b.white_level == a.white_level
        np.testing.assert_allclose(b.color_matrix, a.color_matrix, atol=1e-6)
        half = {"half_size": True, "use_camera_wb": True}
        np.testing.assert_array_equal(b.postprocess(**half), a.postprocess(**half))


@pytest.mark.parametrize(
    "change,message",
    [
        ({"black_level": (64.5, 64, 64, 64)}, "{p}: DNG black_level must be a whole DN in [0, 65535], got 64.5"),
        ({"black_level": -2.0}, "{p}: DNG black_level must be a whole DN in [0, 65535], got -2"),
        ({"white_level": 70000.0}, "{p}: DNG white_level must be a whole DN in [0, 65535], got 70000"),
    ],
)
def test_write_errors(tmp_path: Path, change: dict, message: str) -> None:
    image = dataclasses.replace(RawImage(np.zeros((4, 12, 12)), "RGGB", 64, 1023), **change)
    path = tmp_path / "bad.dng"
    with pytest.raises(RawSynthError) as info:
        write_dng(path, image)
    assert str(info.value) == message.format(p=path)
    assert not path.exists()


def test_write_needs_raw_image(tmp_path: Path) -> None:
    path = tmp_path / "x.dng"
    with pytest.raises(RawSynthError, match=f"^{re.escape(str(path))}: write_dng needs a RawImage, got ndarray$"):
        write_dng(path, np.zeros((4, 8, 8)))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- ISO in the Exif IFD


def _ifd_entries(data: bytes, offset: int) -> tuple[list[tuple[int, int, int, bytes]], int]:
    """The entries ``(tag, type, count, value field)`` of the little-endian TIFF IFD at ``offset``
    and its next-IFD offset."""
    (count,) = struct.unpack_from("<H", data, offset)
    entries = [struct.unpack_from("<HHI4s", data, offset + 2 + 12 * k) for k in range(count)]
    (next_ifd,) = struct.unpack_from("<I", data, offset + 2 + 12 * count)
    return entries, next_ifd


@pytest.mark.parametrize("iso", [800, 64, 12800])
def test_iso_is_in_the_exif_ifd(tmp_path: Path, iso: int) -> None:
    image = dataclasses.replace(_sample("RGGB"), iso=float(iso))
    path = write_dng(tmp_path / "exif.dng", image)
    # independent reader 1: tifffile follows the ExifIFD pointer and parses the sub-IFD
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        assert tags["ExifTag"].value == {"ISOSpeedRatings": iso, "ExifVersion": "0231"}
        assert "ISOSpeedRatings" not in tags
    # LibRaw reads the ISO from there too, and read_raw (EXIF first) agrees
    with rawpy.imread(str(path)) as raw:
        assert raw.other.iso_speed == iso
        np.testing.assert_array_equal(raw.raw_image, image.mosaic_dn())
    assert read_raw(path).iso == float(iso)

    # structure, as exiftool -validate checks it: sorted entries, word-aligned IFDs, counts
    data = path.read_bytes()
    assert data[:4] == b"II*\x00"
    (ifd0_offset,) = struct.unpack_from("<I", data, 4)
    ifd0, next_ifd = _ifd_entries(data, ifd0_offset)
    codes = [entry[0] for entry in ifd0]
    assert codes == sorted(codes) and len(set(codes)) == len(codes) and next_ifd == 0
    assert 34664 not in codes and 34855 not in codes
    pointer = [entry for entry in ifd0 if entry[0] == 34665]
    assert len(pointer) == 1 and pointer[0][1:3] == (4, 1)  # one LONG
    (exif_offset,) = struct.unpack("<I", pointer[0][3])
    assert exif_offset % 2 == 0 and ifd0_offset % 2 == 0
    exif, exif_next = _ifd_entries(data, exif_offset)
    assert exif_offset + 2 + 12 * len(exif) + 4 == len(data) and exif_next == 0
    assert exif == [(34855, 3, 1, struct.pack("<HH", iso, 0)), (36864, 7, 4, b"0231")]


def test_iso_exif_ifd_read_by_pillow(tmp_path: Path) -> None:
    """Independent reader 2: Pillow's EXIF parser (it cannot decode the CFA image itself)."""
    pil_image = pytest.importorskip("PIL.Image")
    path = write_dng(tmp_path / "pil.dng", _sample("BGGR"))
    exif = pil_image.Exif()
    exif.load(path.read_bytes())
    assert 0x8827 not in exif  # not in IFD 0
    assert dict(exif.get_ifd(0x8769)) == {0x8827: 800, 0x9000: b"0231"}


def test_exiftool_validate_is_clean(tmp_path: Path) -> None:
    """``exiftool -validate`` (when installed) finds nothing to warn about."""
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        pytest.skip("exiftool not installed")
    path = write_dng(tmp_path / "v.dng", _sample("GRBG"))
    out = subprocess.run([exiftool, "-validate", "-warning", "-a", "-s3", "-ISO", str(path)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "OK" and "800" in out


def test_iso_of_older_files_is_read_from_ifd0(tmp_path: Path) -> None:
    """A TIFF/EP-style file with ISOSpeedRatings in IFD 0 (as raw-synth wrote before) keeps its ISO."""
    from raw_synth.io.raw import _tiff_fields

    path = tmp_path / "old.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), extratags=[(34855, "H", 1, 400, True)])
    assert _tiff_fields(path, "RGGB")["iso"] == 400.0
