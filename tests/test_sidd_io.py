"""Tests for raw_synth.io.sidd: SIDD metadata, images, scene folders, blocks and submissions."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from raw_synth.cfa import pack
from raw_synth.errors import RawSynthError
from raw_synth.io.sidd import (
    SiddMetadata,
    is_mat_v73,
    iter_sidd_medium,
    parse_scene_name,
    read_block_positions,
    read_sidd_blocks,
    read_sidd_image,
    read_sidd_metadata,
    read_sidd_pair,
    read_submit_raw_csv,
    read_submit_raw_mat,
    write_submit_raw_csv,
    write_submit_raw_mat,
)
from tests.conftest import shared_file
from tests.fixtures_sidd import (
    S6_SCENE,
    make_scene_pair,
    write_block_positions,
    write_mat_v73,
    write_sidd_blocks,
    write_sidd_metadata,
    write_sidd_scene,
)

RNG = np.random.default_rng(11)


# ---------------------------------------------------------------- metadata


def test_real_sidd_metadata(shared_data: Path) -> None:
    path = shared_file(shared_data, "sidd-metadata/0001_METADATA_RAW_010.MAT")
    meta = read_sidd_metadata(path)
    assert isinstance(meta, SiddMetadata)
    assert (meta.camera, meta.make, meta.model) == ("S6", "samsung", "SM-G925I")
    assert meta.cfa == "GRBG"
    assert meta.iso == 100
    assert meta.exposure == pytest.approx(1 / 60, rel=1e-6)
    assert (meta.width, meta.height) == (5328, 3000)
    assert meta.black_level == (0.0, 0.0, 0.0, 0.0) and meta.white_level == 1023.0
    np.testing.assert_allclose(meta.as_shot_neutral, [0.5527, 1.0, 0.4844], atol=1e-4)
    assert meta.color_matrix1.shape == (3, 3) and meta.color_matrix2.shape == (3, 3)
    np.testing.assert_allclose(meta.color_matrix1[0], [0.6640625, -0.04589844, -0.12011719], atol=1e-7)
    np.testing.assert_allclose(meta.color_matrix2[2], [-0.08984375, 0.29199219, 0.61328125], atol=1e-7)
    assert meta.noise_profile.shape == (3, 2)
    np.testing.assert_allclose(meta.noise_profile[:, 0], 4.7946e-4, rtol=1e-4)
    np.testing.assert_array_equal(meta.noise_profile[:, 1], 0.0)  # raw values are kept
    assert meta.orientation == 3
    shot, read = meta.nlf(floor=1e-6)  # Noise Flow's floor for zeros
    np.testing.assert_allclose(shot, 4.7946e-4, rtol=1e-4)
    np.testing.assert_array_equal(read, 1e-6)


@pytest.mark.parametrize("cfa", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_fixture_metadata_round_trip(tmp_path: Path, cfa: str) -> None:
    path = write_sidd_metadata(
        tmp_path / "0002_METADATA_RAW_010.MAT",
        cfa=cfa,
        iso=800,
        black_level=[10, 20, 30, 40],  # tile order, row by row
        white_level=4095,
        noise_profile=(1e-3, 1e-5, 2e-3, 2e-5, 3e-3, 3e-5),
        scene="0002_002_GP_00800_00100_5500_N",
        model="Pixel",
        orientation=1,
    )
    meta = read_sidd_metadata(path)
    assert meta.cfa == cfa
    assert meta.camera == "GP" and meta.iso == 800 and meta.orientation == 1
    tile = {(0, 0): 10.0, (0, 1): 20.0, (1, 0): 30.0, (1, 1): 40.0}
    r, b = divmod(cfa.index("R"), 2), divmod(cfa.index("B"), 2)
    expected = (tile[r], tile[(r[0], 1 - r[1])], tile[(b[0], 1 - b[1])], tile[b])
    assert meta.black_level == expected
    assert meta.white_level == 4095.0
    shot, read = meta.nlf()
    np.testing.assert_allclose(shot, [1e-3, 2e-3, 2e-3, 3e-3])  # R, Gr, Gb, B from R, G, G, B
    np.testing.assert_allclose(read, [1e-5, 2e-5, 2e-5, 3e-5])


def test_metadata_camera_from_model_when_filename_has_no_scene(tmp_path: Path) -> None:
    meta = read_sidd_metadata(write_sidd_metadata(tmp_path / "m.MAT", scene=None, model="SM-G925I"))
    assert meta.camera == "S6"
    meta = read_sidd_metadata(write_sidd_metadata(tmp_path / "n.MAT", scene=None, model="Mystery"))
    assert meta.camera == ""


def test_metadata_arrays_are_read_only_copies(tmp_path: Path) -> None:
    meta = read_sidd_metadata(write_sidd_metadata(tmp_path / "m.MAT"))
    with pytest.raises(ValueError):
        meta.noise_profile[0, 0] = 1.0


def test_metadata_errors(tmp_path: Path) -> None:
    no_cfa = write_sidd_metadata(tmp_path / "nocfa.MAT", include_cfa=False)
    with pytest.raises(RawSynthError, match=r"nocfa\.MAT: no CFAPattern \(tag 33422\)"):
        read_sidd_metadata(no_cfa)
    other = tmp_path / "other.mat"
    scipy.io.savemat(str(other), {"x": np.zeros((2, 2))})
    with pytest.raises(RawSynthError, match=r"other\.mat: no variable 'metadata'"):
        read_sidd_metadata(other)
    junk = tmp_path / "junk.MAT"
    junk.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(RawSynthError, match=r"junk\.MAT: not a readable SIDD \.mat file"):
        read_sidd_metadata(junk)
    v73 = write_mat_v73(tmp_path / "v73.MAT", {"x": np.zeros((2, 2), np.float32)})
    with pytest.raises(RawSynthError, match=r"v73\.MAT: MATLAB v7\.3 metadata is not supported"):
        read_sidd_metadata(v73)
    with pytest.raises(RawSynthError, match=r"missing\.MAT: file not found"):
        read_sidd_metadata(tmp_path / "missing.MAT")


def test_nlf_rejects_unexpected_pairs(tmp_path: Path) -> None:
    meta = read_sidd_metadata(write_sidd_metadata(tmp_path / "m.MAT", noise_profile=(1e-3, 1e-5, 2e-3, 2e-5)))
    with pytest.raises(RawSynthError, match=r"m\.MAT: NoiseProfile has 2 \(beta1, beta2\) pairs, expected 1, 3 or 4"):
        meta.nlf()


# ---------------------------------------------------------------- images


def test_read_v73_image_transposes_back(tmp_path: Path) -> None:
    image = RNG.random((6, 10), dtype=np.float32)  # non-square catches a missing transpose
    path = write_mat_v73(tmp_path / "0001_NOISY_RAW_010.MAT", {"x": image})
    assert is_mat_v73(path)
    assert path.read_bytes().startswith(b"MATLAB 7.3 MAT-file")
    out = read_sidd_image(path)
    assert out.dtype == np.float32 and out.shape == (6, 10)
    np.testing.assert_array_equal(out, image)


def test_read_v5_image(tmp_path: Path) -> None:
    image = RNG.random((4, 8))
    path = tmp_path / "0001_GT_RAW_010.MAT"
    scipy.io.savemat(str(path), {"x": image})
    assert not is_mat_v73(path)
    out = read_sidd_image(path)
    assert out.dtype == np.float32 and out.shape == (4, 8)
    np.testing.assert_allclose(out, image, rtol=1e-7)


def test_read_image_errors(tmp_path: Path) -> None:
    no_x = write_mat_v73(tmp_path / "nox.MAT", {"y": np.zeros((2, 2), np.float32)})
    with pytest.raises(RawSynthError, match=r"nox\.MAT: no variable 'x' .*variables: y"):
        read_sidd_image(no_x)
    cube = write_mat_v73(tmp_path / "cube.MAT", {"x": np.zeros((2, 3, 4), np.float32)})
    with pytest.raises(RawSynthError, match=r"cube\.MAT: variable 'x' has shape \(2, 3, 4\), expected a 2-D"):
        read_sidd_image(cube)
    ints = write_mat_v73(tmp_path / "ints.MAT", {"x": np.zeros((2, 2), np.uint16)})
    with pytest.raises(RawSynthError, match=r"ints\.MAT: variable 'x' has dtype uint16, expected float"):
        read_sidd_image(ints)
    v5 = tmp_path / "v5.MAT"
    scipy.io.savemat(str(v5), {"z": np.zeros((2, 2))})
    with pytest.raises(RawSynthError, match=r"v5\.MAT: no variable 'x'"):
        read_sidd_image(v5)
    with pytest.raises(RawSynthError, match=r"gone\.MAT: file not found"):
        read_sidd_image(tmp_path / "gone.MAT")


def test_read_pair_packs_with_cfa(tmp_path: Path) -> None:
    noisy, clean = RNG.random((2, 6, 8), dtype=np.float32)
    pn = write_mat_v73(tmp_path / "n.MAT", {"x": noisy})
    pc = write_mat_v73(tmp_path / "c.MAT", {"x": clean})
    packed_noisy, packed_clean = read_sidd_pair(pn, pc, "GRBG")
    np.testing.assert_array_equal(packed_noisy, pack(noisy, "GRBG"))
    np.testing.assert_array_equal(packed_clean, pack(clean, "GRBG"))
    odd = write_mat_v73(tmp_path / "odd.MAT", {"x": RNG.random((5, 8), dtype=np.float32)})
    assert read_sidd_pair(odd, odd, "RGGB")[0].shape == (4, 2, 4)  # last row dropped
    with pytest.raises(RawSynthError, match=r"n\.MAT: shape \(6, 8\) differs from odd\.MAT \(5, 8\)"):
        read_sidd_pair(pn, odd, "RGGB")


# ---------------------------------------------------------------- SIDD-Medium folders


def test_parse_scene_name() -> None:
    assert parse_scene_name(S6_SCENE) == {
        "instance": "0001",
        "scene": "001",
        "phone": "S6",
        "iso": 100,
        "shutter": 60,
        "illuminant": 3200,
        "brightness": "L",
    }
    with pytest.raises(RawSynthError, match=r"^0001_S6: not a SIDD scene folder name"):
        parse_scene_name("0001_S6")


def _medium(tmp_path: Path) -> Path:
    root = tmp_path / "SIDD_Medium_Raw"
    data = root / "Data"
    noisy, clean = make_scene_pair(RNG, 8, 12, (1e-3, 1e-5) * 3)
    write_sidd_scene(data, S6_SCENE, noisy, clean, sets=("010", "011"))
    write_sidd_scene(data, "0002_002_GP_00800_00100_5500_N", noisy, clean, cfa="BGGR", iso=800)
    (data / "notes").mkdir()  # not a scene name: skipped
    incomplete = data / "0003_003_IP_00100_00100_5500_H"
    incomplete.mkdir()
    write_mat_v73(incomplete / "0003_NOISY_RAW_010.MAT", {"x": noisy})  # GT and METADATA missing
    return root


def test_iter_sidd_medium_layouts(tmp_path: Path) -> None:
    root = _medium(tmp_path)
    scenes = list(iter_sidd_medium(root))
    assert [s.name for s in scenes] == [S6_SCENE, "0002_002_GP_00800_00100_5500_N"]
    s6, gp = scenes
    assert (s6.phone, s6.iso, s6.shutter, s6.illuminant, s6.brightness) == ("S6", 100, 60, 3200, "L")
    assert [p.set_id for p in s6.pairs] == ["010", "011"] and [p.set_id for p in gp.pairs] == ["010"]
    assert s6.pair("011").noisy_path.name == "0001_NOISY_RAW_011.MAT"
    with pytest.raises(RawSynthError, match=r"no complete _011 set"):
        gp.pair("011")
    assert [s.name for s in iter_sidd_medium(root / "Data")] == [s.name for s in scenes]
    assert [s.name for s in iter_sidd_medium(root / "Data" / S6_SCENE)] == [S6_SCENE]
    assert [p.set_id for p in next(iter_sidd_medium(root, sets=("011",))).pairs] == ["011"]
    with pytest.raises(RawSynthError, match=r"nowhere: not a folder"):
        list(iter_sidd_medium(tmp_path / "nowhere"))


def test_scene_pair_loads_lazily(tmp_path: Path) -> None:
    root = _medium(tmp_path)
    gp = list(iter_sidd_medium(root))[1]
    pair = gp.pair("010")
    meta = pair.metadata()
    assert (meta.cfa, meta.iso, meta.camera, meta.width, meta.height) == ("BGGR", 800, "GP", 12, 8)
    noisy = pair.noisy()
    assert noisy.shape == (8, 12) and pair.gt().shape == (8, 12)
    packed_noisy, packed_clean = pair.packed()
    np.testing.assert_array_equal(packed_noisy, pack(noisy, "BGGR"))
    np.testing.assert_array_equal(packed_clean, pack(pair.gt(), "BGGR"))


# ---------------------------------------------------------------- blocks and positions


@pytest.mark.parametrize("v73", [False, True])
def test_read_blocks_default_key(tmp_path: Path, v73: bool) -> None:
    blocks = RNG.random((2, 3, 8, 6), dtype=np.float32)  # 6 != 8 catches a wrong transpose
    path = write_sidd_blocks(tmp_path / "ValidationNoisyBlocksRaw.mat", blocks, v73=v73)
    out = read_sidd_blocks(path)
    assert out.dtype == np.float32 and out.shape == (2, 3, 8, 6)
    np.testing.assert_array_equal(out, blocks)
    gt = write_sidd_blocks(tmp_path / "gt.mat", blocks, key="ValidationGtBlocksRaw", v73=v73)
    np.testing.assert_array_equal(read_sidd_blocks(gt, key="ValidationGtBlocksRaw"), blocks)


def test_read_blocks_from_cell_array(tmp_path: Path) -> None:
    blocks = RNG.random((2, 3, 4, 4), dtype=np.float32)
    cells = np.empty((2, 3), dtype=object)
    for i in range(2):
        for j in range(3):
            cells[i, j] = blocks[i, j]
    path = tmp_path / "SubmitRaw.mat"
    scipy.io.savemat(str(path), {"SubmitRaw": cells})
    np.testing.assert_array_equal(read_sidd_blocks(path), blocks)


def test_read_blocks_errors(tmp_path: Path) -> None:
    flat = write_sidd_blocks(tmp_path / "BenchmarkNoisyBlocksRaw.mat", np.zeros((3, 8, 8), np.float32))
    with pytest.raises(RawSynthError, match=r"BenchmarkNoisyBlocksRaw\.mat: variable 'BenchmarkNoisyBlocksRaw' "
                                            r"has shape \(3, 8, 8\), expected 4-D"):
        read_sidd_blocks(flat)
    wrong_key = write_sidd_blocks(tmp_path / "ValidationGtBlocksRaw.mat", np.zeros((1, 1, 2, 2), np.float32),
                                  key="other")
    with pytest.raises(RawSynthError,
                       match=r"ValidationGtBlocksRaw\.mat: no variable 'ValidationGtBlocksRaw' .*variables: other"):
        read_sidd_blocks(wrong_key)
    srgb = write_sidd_blocks(tmp_path / "Blocks.mat", np.zeros((1, 1, 2, 2), np.uint8))
    with pytest.raises(RawSynthError,
                       match=r"Blocks\.mat: variable 'Blocks' has dtype uint8, expected float RAW blocks"):
        read_sidd_blocks(srgb)


def test_read_block_positions_zero_based(tmp_path: Path) -> None:
    rows = np.array([[1601, 2413, 256, 256], [1, 1, 256, 256], [3, 5, 128, 64]])
    path = write_block_positions(tmp_path / "BenchmarkBlocks32.mat", rows)
    out = read_block_positions(path)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[1600, 2412, 256, 256], [0, 0, 256, 256], [2, 4, 128, 64]])


def test_read_block_positions_errors(tmp_path: Path) -> None:
    narrow = write_block_positions(tmp_path / "narrow.mat", np.ones((32, 3)))
    with pytest.raises(RawSynthError,
                       match=r"narrow\.mat: variable 'BenchmarkBlocks32' has shape \(32, 3\), expected \(n, 4\)"):
        read_block_positions(narrow)
    zero = write_block_positions(tmp_path / "zero.mat", np.array([[0, 1, 256, 256]]))
    with pytest.raises(RawSynthError, match=r"zero\.mat: .*1-based starts >= 1"):
        read_block_positions(zero)


# ---------------------------------------------------------------- submissions


def test_submit_mat_round_trip(tmp_path: Path) -> None:
    blocks = RNG.random((2, 32, 8, 8), dtype=np.float32)
    path = write_submit_raw_mat(tmp_path / "SubmitRaw.mat", blocks)
    assert set(k for k in scipy.io.loadmat(str(path)) if not k.startswith("__")) == {"SubmitRaw"}
    out = read_submit_raw_mat(path)
    assert out.dtype == np.float32 and out.shape == blocks.shape
    np.testing.assert_array_equal(out, blocks)
    np.testing.assert_array_equal(read_sidd_blocks(path), blocks)
    with pytest.raises(RawSynthError,
                       match=r"bad\.mat: blocks have shape \(8, 8\), expected \(images, blocks, height, width\)"):
        write_submit_raw_mat(tmp_path / "bad.mat", blocks[0, 0])


def test_submit_csv_round_trip_and_layout(tmp_path: Path) -> None:
    blocks = RNG.random((2, 32, 4, 6), dtype=np.float32)
    path = write_submit_raw_csv(tmp_path / "SubmitRaw.csv", blocks)
    lines = path.read_text().splitlines()
    assert lines[0] == "ID,BLOCK" and len(lines) == 1 + 64
    ident, payload = lines[1 + 33].split(",")
    assert ident == "33"  # image 1, block 1
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(payload), "<f4").reshape(4, 6), blocks[1, 1])
    out = read_submit_raw_csv(path, block_shape=(4, 6))
    assert out.dtype == np.float32 and out.shape == (2, 32, 4, 6)
    np.testing.assert_array_equal(out, blocks)


def test_submit_csv_errors(tmp_path: Path) -> None:
    blocks = np.zeros((1, 2, 2, 2), np.float32)
    path = write_submit_raw_csv(tmp_path / "s.csv", blocks)
    with pytest.raises(RawSynthError, match=r"s\.csv: block ID 0 has 16 bytes, expected 36"):
        read_submit_raw_csv(path, block_shape=(3, 3), n_blocks=2)
    with pytest.raises(RawSynthError, match=r"s\.csv: IDs must be 0\.\.N-1 with N a multiple of 32, got 2 rows"):
        read_submit_raw_csv(path, block_shape=(2, 2))
    bad = tmp_path / "bad.csv"
    bad.write_text("Id,Block\n0,AAAA\n")
    with pytest.raises(RawSynthError, match=re.escape("bad.csv: header is 'Id,Block', expected 'ID,BLOCK'")):
        read_submit_raw_csv(bad)
