"""The ``anscombe-bm3d`` baseline and the optional packages of the classical baselines.

* Presence: on packed RAW of ``skimage.data.astronaut`` (linearised, mosaicked RGGB, 64 x 64 per
  plane) with Poisson-Gaussian noise ``shot/read = 3e-3/4e-5`` (seed 0), ``anscombe-bm3d`` scores
  the PSNR measured when it was chosen, clearly above the noisy input and NL-means; it is loaded
  by ``eval-sidd`` and runs through the CLI on tiny SIDD files.
* The closed-form unbiased inverse agrees with the exact unbiased inverse computed by quadrature.
* Absence: with ``bm3d`` or ``scikit-image`` unimportable the method raises one-line
  :class:`~raw_synth.errors.RawSynthError` and everything else still works; a fresh interpreter
  without either imports the whole evaluation stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import poisson

from denoise.baselines import (
    BASELINE_DESCRIPTIONS,
    BASELINES,
    BM3D_BASELINE,
    CLASSICAL_BASELINE,
    PLANE_TRANSFORM,
    MissingPackageError,
    anscombe_bm3d_denoise,
    anscombe_forward,
    anscombe_inverse,
    anscombe_inverse_unbiased,
    anscombe_nlm_denoise,
)
from denoise.eval_sidd import run_eval_sidd
from denoise.evaluate import load_method
from raw_synth.errors import RawSynthError
from tests.fixtures_sidd import write_sidd_blocks
from tests.test_sidd_eval import (
    PROFILE,
    SCENES,
    colour_index,
    save_offset_checkpoint,
    smooth_blocks,
    write_metadata_dir,
)

REPO = Path(__file__).resolve().parents[1]

BM3D_MESSAGE = "--model anscombe-bm3d: needs the optional 'bm3d' package: pip install \"raw-synth[bm3d]\""
NLM_MESSAGE = "--model anscombe-nlm: needs the optional 'scikit-image' package: pip install \"raw-synth[nlm]\""

#: PSNR (dB) measured on :func:`astronaut_case` when anscombe-bm3d was chosen (bm3d 4.0.3).
NOISY_PSNR, NLM_PSNR, BM3D_PSNR = 30.769, 32.826, 33.843
PSNR_TOL = 0.03  # bm3d's multi-threaded aggregation is not bit-reproducible


def psnr(pred: np.ndarray, clean: np.ndarray) -> float:
    mse = np.mean((np.clip(pred, 0.0, 1.0).astype(np.float64) - clean) ** 2)
    return float(10.0 * np.log10(1.0 / mse))


def hide(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``package`` and its submodules unimportable for one test."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, package, None)


@pytest.fixture(scope="module")
def astronaut_case() -> dict[str, Any]:
    """Clean and noisy packed RAW ``(1, 4, 64, 64)`` of the astronaut, ``shot/read = 3e-3/4e-5``."""
    skdata = pytest.importorskip("skimage.data")
    srgb = skdata.astronaut()[100:228, 150:278].astype(np.float64) / 255.0
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    clean = np.stack([lin[0::2, 0::2, 0], lin[0::2, 1::2, 1], lin[1::2, 0::2, 1], lin[1::2, 1::2, 2]])[None]
    shot, read = 3e-3, 4e-5
    rng = np.random.default_rng(0)
    noisy = shot * rng.poisson(clean / shot) + rng.normal(0.0, np.sqrt(read), clean.shape)
    return {"clean": clean, "noisy": noisy, "shot": np.full(4, shot), "read": np.full(4, read)}


# ----------------------------------------------------------------------------- the inverse


def exact_mean_of_transform(y: float, s: float) -> float:
    """``E[2 sqrt(p + n + 3/8 + s^2)]``, ``p ~ Poisson(y)``, ``n ~ N(0, s^2)``, by quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    k = np.arange(int(y + 12 * np.sqrt(y + 1) + 30))
    arg = k[:, None] + s * nodes[None, :] + 0.375 + s * s
    return float((poisson.pmf(k, y)[:, None] * weights[None, :] * 2 * np.sqrt(np.maximum(arg, 0.0))).sum())


def test_closed_form_inverse_matches_the_exact_unbiased_inverse() -> None:
    # photon units: shot a = 1, read = s^2, so x = y
    for s in (0.0, 0.5, 1.0, 2.0, 4.0):
        for y in np.geomspace(0.1, 100.0, 9):
            ez = exact_mean_of_transform(y, s)
            assert float(anscombe_inverse_unbiased(np.array(ez), 1.0, s * s)) == pytest.approx(y, abs=0.045)
    ez = exact_mean_of_transform(0.1, 0.0)  # where the asymptotic inverse is biased
    assert float(anscombe_inverse(np.array(ez), 1.0, 0.0)) == pytest.approx(0.32, abs=0.01)
    # scaled: x = a y; the floor maps to 0; Gaussian limit as the asymptotic inverse
    assert float(anscombe_inverse_unbiased(np.array(ez), 2e-3, 0.0)) == pytest.approx(2e-4, rel=0.01)
    np.testing.assert_array_equal(anscombe_inverse_unbiased(np.array([0.0, 1.0]), 2e-3, 1e-6), [0.0, 0.0])
    np.testing.assert_allclose(anscombe_inverse_unbiased(np.array([150.0]), 0.0, 4e-6), [0.3])
    z = anscombe_forward(np.linspace(0.0, 1.0, 50), 3e-3, 4e-5)
    assert (np.diff(anscombe_inverse_unbiased(z, 3e-3, 4e-5)) >= 0).all()


def test_plane_transform_is_orthonormal() -> None:
    np.testing.assert_allclose(PLANE_TRANSFORM @ PLANE_TRANSFORM.T, np.eye(4), atol=1e-15)
    np.testing.assert_allclose(PLANE_TRANSFORM[0], [0.5, 0.5, 0.5, 0.5])


# ----------------------------------------------------------------------------- presence


def test_bm3d_beats_noisy_input_and_nlm(astronaut_case: dict[str, Any]) -> None:
    pytest.importorskip("bm3d")
    case = astronaut_case
    noisy = case["noisy"].astype(np.float32)
    before = noisy.copy()
    out = anscombe_bm3d_denoise(noisy, case["shot"], case["read"])
    np.testing.assert_array_equal(noisy, before)  # the input is not modified
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    noisy_psnr = psnr(noisy, case["clean"])
    nlm_psnr = psnr(anscombe_nlm_denoise(noisy, case["shot"], case["read"]), case["clean"])
    bm3d_psnr = psnr(out, case["clean"])
    assert noisy_psnr == pytest.approx(NOISY_PSNR, abs=PSNR_TOL)
    assert nlm_psnr == pytest.approx(NLM_PSNR, abs=PSNR_TOL)
    assert bm3d_psnr == pytest.approx(BM3D_PSNR, abs=PSNR_TOL)
    assert bm3d_psnr > noisy_psnr + 3.0  # measured +3.07 dB
    assert bm3d_psnr > nlm_psnr + 1.0  # measured +1.02 dB
    with pytest.raises(RawSynthError, match="zero noise"):
        anscombe_bm3d_denoise(noisy, np.zeros(4), np.zeros(4))
    with pytest.raises(RawSynthError, match=r"expected packed RAW \(B, 4, h, w\)"):
        anscombe_bm3d_denoise(noisy[0], case["shot"], case["read"])


@pytest.mark.parametrize("shape", [(1, 4, 5, 7), (1, 4, 8, 8)])
def test_bm3d_small_planes_are_padded(shape: tuple[int, ...]) -> None:
    pytest.importorskip("bm3d")  # bm3d itself refuses < 8 and crashes on exactly 8 x 8
    rng = np.random.default_rng(1)
    noisy = rng.uniform(0.2, 0.6, shape).astype(np.float32)
    out = anscombe_bm3d_denoise(noisy, np.full(4, 3e-3), np.full(4, 4e-5))
    assert out.shape == noisy.shape and np.isfinite(out).all()


def test_eval_sidd_loads_anscombe_bm3d() -> None:
    pytest.importorskip("bm3d")
    assert BM3D_BASELINE == "anscombe-bm3d" and BASELINES[BM3D_BASELINE] is anscombe_bm3d_denoise
    method = load_method("anscombe-bm3d")
    assert (method.name, method.kind, method.needs_noise) == ("anscombe-bm3d", "classical", True)
    assert method.description == BASELINE_DESCRIPTIONS["anscombe-bm3d"]
    assert "joint BM3D" in method.description and "unbiased inverse" in method.description


def tiny_validation_split(root: Path) -> tuple[Path, Path]:
    """2 images x 1 block of 64 x 64 (smooth, Gaussian noise of the metadata NoiseProfile) + metadata."""
    rng = np.random.default_rng(3)
    gt = np.stack([smooth_blocks(rng, 1, size=64) for _ in SCENES])
    betas = np.asarray(PROFILE).reshape(3, 2)
    noisy = np.empty_like(gt)
    for i, (_, cfa, _, _) in enumerate(SCENES):
        col = colour_index(cfa, 64)
        noisy[i] = np.clip(gt[i] + np.sqrt(betas[col, 0] * gt[i] + betas[col, 1]) * rng.standard_normal(gt[i].shape),
                           0.0, 1.0)
    folder = root / "val"
    folder.mkdir(parents=True)
    write_sidd_blocks(folder / "ValidationNoisyBlocksRaw.mat", noisy.astype(np.float32))
    write_sidd_blocks(folder / "ValidationGtBlocksRaw.mat", gt.astype(np.float32))
    return folder, write_metadata_dir(root / "meta")


def test_eval_sidd_command_with_anscombe_bm3d(tmp_path: Path) -> None:
    pytest.importorskip("bm3d")
    from click.testing import CliRunner

    from raw_synth_cli.cli import main

    folder, meta = tiny_validation_split(tmp_path)
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["eval-sidd", "--sidd-dir", str(folder), "--metadata-dir", str(meta),
                                       "--model", "identity", "--model", "anscombe-bm3d", "--out", str(out),
                                       "--no-baselines", "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "anscombe-bm3d" in result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    rows = {r["method"]: r for r in report["rows"] if r["kind"] == "measured"}
    assert list(rows) == ["identity", "anscombe-bm3d"]
    assert rows["anscombe-bm3d"]["raw_psnr"] > rows["identity"]["raw_psnr"] + 3.0
    assert "anscombe-bm3d" in (out / "report.md").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- absence


def test_without_bm3d_one_line_error_and_the_rest_works(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hide(monkeypatch, "bm3d")
    with pytest.raises(RawSynthError) as info:
        load_method("anscombe-bm3d")
    assert str(info.value) == BM3D_MESSAGE and isinstance(info.value, MissingPackageError)
    noisy = np.full((1, 4, 16, 16), 0.3, np.float32)
    with pytest.raises(RawSynthError, match="^" + BM3D_MESSAGE.replace("[", r"\[").replace("]", r"\]") + "$"):
        anscombe_bm3d_denoise(noisy, np.full(4, 1e-3), np.full(4, 1e-5))
    np.testing.assert_array_equal(load_method("identity").denoise(noisy, np.zeros(4), np.zeros(4)), noisy)
    ckpt = load_method(str(save_offset_checkpoint(tmp_path / "offset.safetensors", 0.1)))
    np.testing.assert_allclose(ckpt.denoise(noisy, np.zeros(4), np.zeros(4)), 0.2, atol=1e-6)  # noisy - offset
    pytest.importorskip("skimage.restoration")
    assert load_method(CLASSICAL_BASELINE).denoise(noisy, np.full(4, 1e-3), np.full(4, 1e-5)).shape == noisy.shape


def test_without_skimage_one_line_error_and_the_rest_works(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hide(monkeypatch, "skimage")
    with pytest.raises(RawSynthError) as info:
        load_method("anscombe-nlm")
    assert str(info.value) == NLM_MESSAGE and isinstance(info.value, MissingPackageError)
    noisy = np.full((1, 4, 16, 16), 0.3, np.float32)
    with pytest.raises(RawSynthError) as info:
        anscombe_nlm_denoise(noisy, np.full(4, 1e-3), np.full(4, 1e-5))
    assert str(info.value) == NLM_MESSAGE
    np.testing.assert_array_equal(load_method("identity").denoise(noisy, np.zeros(4), np.zeros(4)), noisy)
    ckpt_path = save_offset_checkpoint(tmp_path / "offset.safetensors", 0.1)
    ckpt = load_method(str(ckpt_path))
    np.testing.assert_allclose(ckpt.denoise(noisy, np.zeros(4), np.zeros(4)), 0.2, atol=1e-6)  # noisy - offset

    # eval-sidd: the default anscombe-nlm row is skipped with a note; asking for it is an error
    folder, meta = tiny_validation_split(tmp_path)
    ev = run_eval_sidd(folder, str(ckpt_path), tmp_path / "out", metadata_dir=meta, plots=False)
    assert [m.method.name for m in ev.methods] == ["identity", "offset"]
    assert f"Baseline anscombe-nlm skipped: {NLM_MESSAGE}" in ev.notes
    assert NLM_MESSAGE in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    with pytest.raises(RawSynthError) as info:
        run_eval_sidd(folder, "anscombe-nlm", tmp_path / "out2", metadata_dir=meta, plots=False)
    assert str(info.value) == NLM_MESSAGE


def test_fresh_interpreter_without_optional_packages_imports_everything() -> None:
    code = (
        "import sys\n"
        "for name in ('skimage', 'bm3d'):\n"
        "    sys.modules[name] = None\n"
        "import numpy as np\n"
        "import denoise.baselines, denoise.evaluate, denoise.report, raw_synth_cli\n"
        "from denoise.evaluate import load_method\n"
        "x = np.full((1, 4, 16, 16), 0.25, np.float32)\n"
        "assert (load_method('identity').denoise(x, np.zeros(4), np.zeros(4)) == x).all()\n"
        "for name in ('anscombe-nlm', 'anscombe-bm3d'):\n"
        "    try:\n"
        "        load_method(name)\n"
        "    except denoise.baselines.MissingPackageError as exc:\n"
        "        print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [NLM_MESSAGE, BM3D_MESSAGE]
