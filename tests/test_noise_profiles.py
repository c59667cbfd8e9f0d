"""Every bundled camera profile draws noise whose variance is what the draw states."""

from __future__ import annotations

import numpy as np
import pytest

from raw_synth.camera import get_profile, list_profiles
from raw_synth.errors import RawSynthError
from raw_synth.noise import GaussianParams, PhysicsParams, PoissonGaussianParams, apply_noise
from raw_synth.noise.profiles import sample_camera_noise

NOISY_PROFILES = [p.name for p in list_profiles() if p.noise is not None]


def test_all_issue_profiles_are_bundled() -> None:
    expected = {"sidd-ip", "sidd-gp", "sidd-s6", "sidd-n6", "sidd-g4", "eld-sony-a7s2", "eld-nikon-d850",
                "eld-canon-5d4", "eld-canon-70d", "eld-canon-700d", "unprocessing", "cycleisp-dnd", "cycleisp-sidd"}
    assert expected <= set(NOISY_PROFILES)


@pytest.mark.parametrize("name", NOISY_PROFILES)
@pytest.mark.parametrize("seed", [0, 1])
def test_profile_noise_has_the_stated_variance(name: str, seed: int) -> None:
    profile = get_profile(name)
    draw = sample_camera_noise(profile, np.random.default_rng(seed))
    if profile.noise.sampler == "iso-table":
        isos = profile.noise.params["iso"]
        assert min(isos) <= draw.iso <= max(isos)
    if profile.noise.sampler == "eld":
        assert isinstance(draw.params, PhysicsParams)
        assert profile.noise.params["Kmin"] <= draw.gain <= profile.noise.params["Kmax"]
    elif profile.noise.model == "poisson-gaussian":
        assert isinstance(draw.params, PoissonGaussianParams)
    else:
        assert isinstance(draw.params, GaussianParams)
    # Flat patches at three intensities well inside the range: measured variance = shot * x + read.
    for level in (0.1, 0.3, 0.6):
        clean = np.full((4, 256, 256), level, dtype=np.float32)
        result = apply_noise(clean, draw.params, np.random.default_rng(100 + seed))
        expected = np.asarray(result.shot) * level + np.asarray(result.read)
        measured = result.noisy.reshape(4, -1).var(axis=1)
        if isinstance(draw.params, PhysicsParams):
            # Row noise is shared by a whole row, so its sample variance over 256 rows scatters more.
            np.testing.assert_allclose(measured, expected, rtol=0.15)
        else:
            np.testing.assert_allclose(measured, expected, rtol=0.02)


def test_same_seed_same_draw_and_poisson_model(tmp_path) -> None:
    profile = get_profile("sidd-gp")
    a = sample_camera_noise(profile, np.random.default_rng(5))
    b = sample_camera_noise(profile, np.random.default_rng(5))
    assert a == b
    poisson = profile.replace(noise=profile.noise.__class__("poisson-gaussian", "iso-table", profile.noise.params))
    draw = sample_camera_noise(poisson, np.random.default_rng(5))
    assert isinstance(draw.params, PoissonGaussianParams)
    clean = np.full((4, 256, 256), 0.4, dtype=np.float32)
    result = apply_noise(clean, draw.params, np.random.default_rng(0))
    np.testing.assert_allclose(result.shot, a.params.shot, rtol=1e-6)
    np.testing.assert_allclose(result.noisy.reshape(4, -1).var(1), np.asarray(result.shot) * 0.4 + result.read,
                               rtol=0.03)


def test_profile_without_noise_or_bad_sampler_is_refused() -> None:
    with pytest.raises(RawSynthError, match="camera profile 'canon-eos-550d' has no noise section$"):
        sample_camera_noise(get_profile("canon-eos-550d"), np.random.default_rng(0))
    bad = get_profile("unprocessing")
    bad = bad.replace(noise=bad.noise.__class__("heteroscedastic-gaussian", "magic", {}))
    with pytest.raises(RawSynthError,
                       match="field 'noise.sampler': unknown sampler 'magic': expected one of unprocessing, "):
        sample_camera_noise(bad, np.random.default_rng(0))
