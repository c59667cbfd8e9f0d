"""SIDD report: report.json / report.md / plots on fixture files, published rows, summary text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from denoise.eval_sidd import run_eval_sidd
from denoise.published import PUBLISHED, SSDNET_TABLE5_SPLIT, published_rows
from denoise.report import MD_SECTIONS, REPORT_FORMAT, format_summary
from tests.test_sidd_eval import make_blocks, save_offset_checkpoint, write_metadata_dir, write_split

JSON_KEYS = {"format", "raw_synth_version", "created", "split", "files", "n_images", "total_images", "n_blocks",
             "block_shape", "settings", "images", "methods", "published", "rows", "notes", "outputs"}


def _strict_json(path: Path) -> dict[str, Any]:
    def refuse(token: str) -> None:
        raise AssertionError(f"{path}: non-standard JSON constant {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


@pytest.fixture(scope="module")
def validation_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("sidd_report")
    noisy, gt = make_blocks(11, offset=0.05)
    folder = write_split(root / "val", noisy, gt)
    ckpt = save_offset_checkpoint(root / "offset-model.safetensors", 0.04)
    out = root / "report"
    ev = run_eval_sidd(folder, str(ckpt), out, metadata_dir=write_metadata_dir(root / "meta"))
    return {"ev": ev, "out": out, "noisy": noisy, "gt": gt}


@pytest.fixture(scope="module")
def benchmark_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("sidd_bench")
    noisy, _ = make_blocks(12)
    folder = write_split(root / "bench", noisy)
    out = root / "report"
    ev = run_eval_sidd(folder, "identity", out, split="benchmark", metadata_dir=write_metadata_dir(root / "meta"))
    return {"ev": ev, "out": out, "noisy": noisy}


def test_published_rows_match_the_facts() -> None:
    table = {row.method: row for row in PUBLISHED}
    assert len(PUBLISHED) == 16
    ssdnet = table["SSDNet"]
    assert (ssdnet.raw_psnr, ssdnet.raw_ssim, ssdnet.srgb_psnr, ssdnet.srgb_ssim) == (51.73, 0.993, 39.33, 0.955)
    assert (table["CycleISP"].raw_psnr, table["BM3D"].raw_psnr, table["EPLL"].srgb_ssim) == (52.41, 45.52, 0.842)
    assert table["Learnable Dictionaries"].srgb_psnr is None
    assert sum(row.split == SSDNET_TABLE5_SPLIT for row in PUBLISHED) == 15
    assert SSDNET_TABLE5_SPLIT == "benchmark (per SSDNet Table 5)"
    ntire = table["Liu et al. BayerUnify/BayerAug U-Net"]
    assert (ntire.raw_psnr, ntire.raw_ssim) == (52.11, 0.9969)
    assert all(row["kind"] == "published" for row in published_rows())


def test_validation_report_files_and_json(validation_run: dict[str, Any]) -> None:
    out = validation_run["out"]
    report = _strict_json(out / "report.json")
    assert set(report) == JSON_KEYS
    assert report["format"] == REPORT_FORMAT and report["split"] == "validation"
    assert (report["n_images"], report["n_blocks"], report["block_shape"]) == (2, 3, [256, 256])
    assert [m["name"] for m in report["methods"]] == ["identity", "anscombe-nlm", "offset-model"]
    offset = report["methods"][2]
    assert offset["kind"] == "checkpoint" and len(offset["sha256"]) == 64
    assert offset["summary"]["raw_psnr"] == pytest.approx(40.0, abs=2e-3)
    assert set(offset["breakdown"]["raw_psnr"]) == {"all", "per_image", "per_camera", "per_iso", "per_camera_iso"}
    assert set(offset["breakdown"]["raw_psnr"]["per_camera"]) == {"S6", "GP"}
    assert np.array(offset["per_block"]["raw_psnr"]).shape == (2, 3)
    assert {img["noise_source"] for img in report["images"]} == {"metadata NoiseProfile (tag 51041)"}
    assert [img["cfa"] for img in report["images"]] == ["GRBG", "BGGR"]
    # identity on noisy = gt + 0.05: 26.02 dB per block
    assert report["methods"][0]["summary"]["raw_psnr"] == pytest.approx(-20 * np.log10(0.05), abs=2e-3)
    rows = report["rows"]
    published = [r for r in rows if r["kind"] == "published"]
    measured = [r for r in rows if r["kind"] == "measured"]
    assert [r["method"] for r in published] == [p.method for p in PUBLISHED]
    assert published[0]["split"] == "benchmark (per SSDNet Table 5)"
    assert [r["method"] for r in measured] == ["identity", "anscombe-nlm", "offset-model"]
    assert measured[2]["raw_psnr"] == pytest.approx(offset["summary"]["raw_psnr"])
    assert all(r["split"] == "validation (this run)" for r in measured)
    assert report["outputs"] == {"psnr_per_camera": "plots/psnr_per_camera.png", "crops": "plots/crops.png",
                                 "json": "report.json", "md": "report.md"}


def test_validation_report_markdown_and_plots(validation_run: dict[str, Any]) -> None:
    out = validation_run["out"]
    md = (out / "report.md").read_text(encoding="utf-8")
    headings = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    assert headings == [s for s in MD_SECTIONS if s != "Submissions"]
    assert md.startswith("# SIDD RAW denoising: validation split")
    assert "| SSDNet | published | 51.73 | 0.9930 | 39.33 | 0.9550 | benchmark (per SSDNet Table 5) |" in md
    assert "| offset-model | measured | 40.00 |" in md
    assert "| S6 (1 img) |" in md and "| GP (1 img) |" in md and "| 800 (1 img) |" in md
    assert "![RAW PSNR per camera](plots/psnr_per_camera.png)" in md
    for name, min_size in (("psnr_per_camera.png", (300, 200)), ("crops.png", (600, 300))):
        with Image.open(out / "plots" / name) as img:
            assert img.format == "PNG"
            assert img.size[0] >= min_size[0] and img.size[1] >= min_size[1]
    ev = validation_run["ev"]
    assert len(ev.crops) == 2 and all(c.calibrated for c in ev.crops)
    assert all(len(res.crops) == 2 and res.crops[0].shape == (256, 256, 3) for res in ev.methods)


def test_summary_text(validation_run: dict[str, Any]) -> None:
    text = format_summary(validation_run["ev"], validation_run["out"])
    lines = text.splitlines()
    assert lines[0] == "SIDD validation: 2 images x 3 blocks"
    assert any(line.startswith("offset-model") and " 40.00 " in line for line in lines)
    assert ("published RAW PSNR (SIDD benchmark, other split): Learnable Dictionaries 52.48, CycleISP 52.41, "
            "SSDNet 51.73") in text
    assert lines[-1].endswith("report.md")


def test_benchmark_report(benchmark_run: dict[str, Any]) -> None:
    out = benchmark_run["out"]
    report = _strict_json(out / "report.json")
    assert set(report) == JSON_KEYS and report["split"] == "benchmark" and report["files"]["gt"] is None
    method = report["methods"][0]
    assert method["summary"] == {"raw_psnr": None, "raw_ssim": None, "srgb_psnr": None, "srgb_ssim": None}
    assert Path(method["submissions"]["mat"]).is_file() and Path(method["submissions"]["csv"]).is_file()
    assert report["outputs"] == {"crops": "plots/crops.png", "json": "report.json", "md": "report.md"}
    md = (out / "report.md").read_text(encoding="utf-8")
    headings = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    assert headings == list(MD_SECTIONS)
    assert "sidd-benchmark-raw-psnr" in md and "SubmitRaw.mat" in md
    assert not (out / "plots" / "psnr_per_camera.png").exists()
    with Image.open(out / "plots" / "crops.png") as img:
        assert img.format == "PNG"
    text = format_summary(benchmark_run["ev"])
    assert "identity:" in text and "SubmitRaw.csv" in text


def test_eval_sidd_command(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from raw_synth_cli.cli import main

    noisy, gt = make_blocks(5, offset=0.05)
    folder = write_split(tmp_path / "val", noisy, gt)
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["eval-sidd", "--sidd-dir", str(folder), "--model", "identity", "--out",
                                       str(out), "--no-baselines", "--no-plots", "--cfa", "GRBG"])
    assert result.exit_code == 0, result.output
    assert "identity" in result.output
    report = _strict_json(out / "report.json")
    assert report["split"] == "validation" and (out / "report.md").exists()
    bad = CliRunner().invoke(main, ["eval-sidd", "--sidd-dir", str(tmp_path), "--out", str(out)])
    assert bad.exit_code == 2 and bad.output.startswith("error: ") and len(bad.output.strip().splitlines()) == 1
