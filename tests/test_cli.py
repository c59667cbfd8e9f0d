"""The raw-synth command line: version, cameras, convert, error reporting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rawpy
from click.testing import CliRunner

from raw_synth import __version__
from raw_synth.io import read_raw, write_image
from raw_synth_cli.cli import main


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_version() -> None:
    result = _run("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"raw-synth, version {__version__}"


def test_cameras_list_and_show() -> None:
    result = _run("cameras", "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "cfa", "bits", "black", "white", "noise"]
    assert any(line.split()[:3] == ["sidd-s6", "GRBG", "10"] for line in lines[1:])
    listed = json.loads(_run("cameras", "list", "--json").output)
    assert {p["name"] for p in listed} >= {"canon-eos-550d", "sidd-s6"}
    shown = _run("cameras", "show", "canon-eos-550d")
    assert shown.exit_code == 0 and "black_level: [2056.0, 2056.0, 2056.0, 2056.0]" in shown.output


def test_unknown_camera_is_one_line_error() -> None:
    result = CliRunner().invoke(main, ["cameras", "show", "nikon-z99"])
    assert result.exit_code == 2
    assert result.output.startswith("error: unknown camera profile 'nikon-z99': expected a YAML path or one of ")
    assert len(result.output.strip().splitlines()) == 1


def test_convert_writes_dngs_that_rawpy_renders(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    # A smooth colour gradient with an odd size: the last column and row get cropped.
    yy, xx = np.mgrid[0:37, 0:51] / 50.0
    write_image(photo, np.stack([xx, yy, 0.5 * np.ones_like(xx)], axis=-1).astype(np.float32) * 0.8 + 0.1)
    result = _run("convert", str(photo), "--out", str(tmp_path / "out"), "--camera", "sidd-s6", "--preview",
                  "--seed", "3")
    assert result.exit_code == 0, result.output
    dng = tmp_path / "out" / "photo.dng"
    assert result.output.strip().splitlines()[-1] == str(dng)
    assert (tmp_path / "out" / "photo.png").exists()
    raw = read_raw(dng)
    assert raw.cfa == "GRBG"
    assert raw.packed.shape == (4, 18, 25)
    assert raw.white_level == 1023
    with rawpy.imread(str(dng)) as handle:
        rendered = handle.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=8)
    assert rendered.shape[:2] == (36, 50)
    # Same seed, same file; the gradient survives the round trip through LibRaw (red grows left to right).
    assert rendered[:, -5:, 0].mean() > rendered[:, :5, 0].mean() + 40
    again = _run("convert", str(photo), "--out", str(tmp_path / "again"), "--camera", "sidd-s6", "--seed", "3")
    assert again.exit_code == 0
    np.testing.assert_array_equal(read_raw(tmp_path / "again" / "photo.dng").packed, raw.packed)


def test_convert_builtin_samples(tmp_path: Path) -> None:
    result = _run("convert", "samples", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    written = sorted(tmp_path.glob("*.dng"))
    assert len(written) >= 4
    with rawpy.imread(str(written[0])) as handle:
        image = handle.postprocess(use_camera_wb=True)
    assert image.ndim == 3 and image.std() > 10  # a real picture, not a flat field


def test_convert_bad_input_is_one_line_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    result = CliRunner().invoke(main, ["convert", str(text), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {text}: ")
    assert len(result.output.strip().splitlines()) == 1
    missing = CliRunner().invoke(main, ["convert", str(tmp_path / "none.png"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and missing.output.startswith(f"error: {tmp_path / 'none.png'}: ")


def test_generate_inspect_verify_commands(tmp_path: Path) -> None:
    store = tmp_path / "shards"
    args = ["generate", "--n", "6", "--out", str(store), "--patch", "32", "--shard-size", "4", "--workers", "1",
            "--cameras", "sidd-s6,eld-sony-a7s2", "--format", "hdf5"]
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{store}: 6 pairs written, 0 resumed, ")
    again = _run(*args)
    assert again.output.startswith(f"{store}: 0 pairs written, 6 resumed, ")
    changed = CliRunner().invoke(main, [*args[:-2], "--format", "zarr"])
    assert changed.exit_code == 2
    assert "holds a store made with a different configuration" in changed.output
    assert "use --overwrite to replace it" in changed.output

    summary = json.loads(_run("inspect", str(store), "--json").output)
    assert summary["n_samples"] == 6 and set(summary["cameras"]) <= {"sidd-s6", "eld-sony-a7s2"}
    shown = _run("inspect", str(store), "--preview", str(tmp_path / "p.png"), "--plot", str(tmp_path / "h.png"))
    assert shown.exit_code == 0 and "samples   6 of 6 in 2 hdf5 shards" in shown.output
    assert (tmp_path / "p.png").stat().st_size > 1000 and (tmp_path / "h.png").stat().st_size > 1000
    ok = _run("verify", str(store))
    assert ok.exit_code == 0 and ok.output.strip() == f"{store}: OK (6 samples in 2 shards verified)"

    shard = sorted(store.glob("shard-*.h5"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    shard.write_bytes(bytes(data))
    bad = CliRunner().invoke(main, ["verify", str(store)])
    assert bad.exit_code == 1 and "FAILED" in bad.output


def test_convert_with_the_bundled_ssdnet_and_model_option(tmp_path: Path) -> None:
    from raw_synth.engine import bundled_checkpoint

    photo = tmp_path / "photo.png"
    yy, xx = np.mgrid[0:32, 0:48] / 48.0
    write_image(photo, np.stack([xx, yy, 0.5 * np.ones_like(xx)], axis=-1).astype(np.float32) * 0.8 + 0.1)
    if bundled_checkpoint() is None:
        pytest.skip("no bundled checkpoint in this checkout")
    result = _run("convert", str(photo), "--out", str(tmp_path / "a"), "--engine", "ssdnet")
    assert result.exit_code == 0, result.output
    same = _run("convert", str(photo), "--out", str(tmp_path / "b"), "--engine", "ssdnet",
                "--model", str(bundled_checkpoint()))
    assert same.exit_code == 0, same.output
    a, b = read_raw(tmp_path / "a" / "photo.dng"), read_raw(tmp_path / "b" / "photo.dng")
    np.testing.assert_array_equal(a.packed, b.packed)
    assert a.packed.shape == (4, 16, 24) and a.cfa == "RGGB"
    with rawpy.imread(str(tmp_path / "a" / "photo.dng")) as handle:
        assert handle.postprocess(use_camera_wb=True).shape[:2] == (32, 48)
    wrong = CliRunner().invoke(main, ["convert", str(photo), "--out", str(tmp_path / "c"), "--model", "x.safetensors"])
    assert wrong.exit_code == 2 and wrong.output == "error: --model: only used with --engine ssdnet, not with 'upi'\n"
