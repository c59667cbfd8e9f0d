"""The bundled denoiser checkpoint: it loads, keeps shapes and removes Poisson-Gaussian noise.

The content is a ``vibrant`` image through Unprocessing: the checkpoint never saw that corpus. The
figures were recorded from the checkpoint of 2026-12-03 (docs/model_card_denoiser.md); a retrained
checkpoint must be re-recorded here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from denoise.denoise_file import bundled_denoiser
from denoise.inference import load_denoiser
from raw_synth.corpora import load_corpus_image
from raw_synth.isp import unprocess
from raw_synth.metrics import psnr

#: ``(shot, read, PSNR of the noisy input, PSNR of the output)`` in dB, recorded (one torch thread).
RECORDED = [
    (8e-4, 4e-6, 40.576, 42.908),
    (3e-3, 4e-5, 34.387, 37.966),
    (1.2e-2, 6e-4, 27.418, 32.543),
]


@pytest.fixture(scope="module")
def bundled() -> tuple[torch.nn.Module, dict]:
    return load_denoiser(bundled_denoiser())


def _pair(shot: float, read: float) -> tuple[np.ndarray, np.ndarray]:
    rgb = load_corpus_image("vibrant", 0, size=(128, 128), seed=0)
    raw, _ = unprocess(rgb, np.random.default_rng(0))
    clean = np.clip(raw, 0.0, 1.0).astype(np.float32)
    rng = np.random.default_rng(1)
    noisy = shot * rng.poisson(clean / shot) + rng.normal(0.0, np.sqrt(read), clean.shape)
    return noisy.astype(np.float32), clean


def test_bundled_denoiser_is_the_documented_model(bundled) -> None:
    model, meta = bundled
    assert meta["config"]["dim"] == 16 and meta["config"]["conditioned"] is True
    assert meta["extra"]["step"] == 4000  # the fine-tuning run's steps (after 5,000 of the cpu recipe)
    assert sum(p.numel() for p in model.parameters()) == 1_190_468


@pytest.mark.parametrize("shot, read, noisy_psnr, denoised_psnr", RECORDED)
def test_bundled_denoiser_scores(bundled, shot: float, read: float, noisy_psnr: float, denoised_psnr: float) -> None:
    model, _ = bundled
    noisy, clean = _pair(shot, read)
    x = torch.from_numpy(noisy)[None]
    with torch.inference_mode():
        out = model.predict(x, (shot * x + read).clamp_min(0.0))
    assert out.shape == x.shape
    out = out[0].clamp(0.0, 1.0).numpy()
    assert psnr(np.clip(noisy, 0.0, 1.0), clean) == pytest.approx(noisy_psnr, abs=1e-3)
    assert psnr(out, clean) == pytest.approx(denoised_psnr, abs=0.05)
