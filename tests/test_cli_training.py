"""train-isp, train-denoiser and denoise from the command line, on tiny generated data."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import rawpy
from click.testing import CliRunner

from raw_synth.io import RawImage, read_raw, write_dng
from raw_synth_cli.cli import main


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_train_isp_command_runs_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / "aim"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # AIM 2022 layout: sRGB .jpg + packed uint16 (h, w, 4) .npy
        iio.imwrite(data / f"{i}.jpg", (rng.random((64, 64, 3)) * 255).astype(np.uint8))
        np.save(data / f"{i}.npy", (rng.random((32, 32, 4)) * 1000).astype(np.uint16))
    first = _run("train-isp", "--data", str(data), "--out", str(tmp_path / "run"), "--max-steps", "1")
    assert first.exit_code == 0, first.output
    assert first.output.strip().endswith(f"model {tmp_path / 'run' / 'model.safetensors'}")
    again = _run("train-isp", "--data", str(data), "--out", str(tmp_path / "run"), "--max-steps", "2")
    assert again.exit_code == 0 and f"{tmp_path / 'run'}: 2/" in again.output


def test_train_denoiser_then_denoise_a_dng(tmp_path: Path) -> None:
    store = tmp_path / "store"
    made = _run("generate", "--n", "12", "--out", str(store), "--patch", "128", "--shard-size", "4", "--workers", "1")
    assert made.exit_code == 0, made.output
    trained = _run("train-denoiser", "--data", str(store), "--out", str(tmp_path / "run"), "--max-steps", "1")
    assert trained.exit_code == 0, trained.output
    model = tmp_path / "run" / "model.safetensors"
    assert model.exists()

    rng = np.random.default_rng(1)
    noisy = np.clip(0.3 + 0.05 * rng.standard_normal((4, 64, 64)), 0, 1).astype(np.float32)
    source = write_dng(tmp_path / "in.dng", RawImage(noisy, "GRBG", 64, 1023, iso=400, noise_profile=(1e-3, 1e-5)))
    out = tmp_path / "out.dng"
    result = _run("denoise", str(source), "--model", str(model), "--out", str(out),
                  "--preview", str(tmp_path / "p.png"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{out}: 128x128 GRBG, noise level: ")
    back = read_raw(out)
    assert (back.cfa, back.black_level[0], back.white_level) == ("GRBG", 64.0, 1023.0)
    with rawpy.imread(str(out)) as handle:
        assert handle.raw_image.shape == (128, 128)
    bad = CliRunner().invoke(main, ["denoise", str(source), "--model", str(tmp_path / "none.safetensors"),
                                    "--out", str(tmp_path / "x.dng")])
    assert bad.exit_code == 2 and bad.output.startswith("error: ") and "none.safetensors" in bad.output


def test_both_training_commands_share_resume_restart_and_max_steps(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert _run("generate", "--n", "8", "--out", str(store), "--patch", "64", "--shard-size", "4",
                "--workers", "1").exit_code == 0
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("datasets: {crop: 16}\nnetwork: {name: denoiser-tiny}\ntrain: {max_steps: 6, batch_size: 2}\n"
                      "val: {every: 0, max_samples: 2, crop: 16}\nlogger: {progress: false}\n")
    run = tmp_path / "run"
    base = ["train-denoiser", "--data", str(store), "--out", str(run), "--config", str(recipe)]
    # --resume with nothing to resume, and the two flags together, are one-line errors
    result = CliRunner().invoke(main, [*base, "--resume"])
    assert result.exit_code == 2 and result.output.strip() == (
        f"error: {run}: no training state to resume (train_state.safetensors is missing)")
    result = CliRunner().invoke(main, [*base, "--resume", "--restart"])
    assert result.exit_code == 2 and result.output.strip() == "error: --resume and --restart exclude each other"
    # --max-steps stops the call (the recipe's 6-step schedule is kept); re-running resumes by default
    first = _run(*base, "--max-steps", "2")
    assert first.exit_code == 0 and first.output.startswith(f"{run}: 2 steps")
    second = _run(*base)
    assert second.exit_code == 0 and second.output.startswith(f"{run}: 6 steps")
    again = _run(*base, "--restart", "--max-steps", "1")
    assert again.exit_code == 0 and again.output.startswith(f"{run}: 1 steps")
    # train-isp takes the same flags
    result = CliRunner().invoke(main, ["train-isp", "--data", str(tmp_path), "--out", str(tmp_path / "isp"),
                                       "--resume"])
    assert result.exit_code == 2 and result.output.strip() == (
        f"error: {tmp_path / 'isp'}: no training state to resume (state/last.safetensors is missing)")
