"""Tests of raw_synth.engine: create_engine, the UPI engine's interface and the SSDNet engine."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

import raw_synth.engine as engine_module
from raw_synth.camera import get_profile
from raw_synth.checkpoint import file_sha256, save_model
from raw_synth.cpu_tuning import torch_threads
from raw_synth.engine import (
    EngineResult,
    InverseISP,
    SSDNetEngine,
    UPIEngine,
    bundled_checkpoint,
    create_engine,
    engine_uses_torch,
    list_engines,
)
from raw_synth.errors import RawSynthError
from raw_synth.inference import InferenceOptions, predict_tiled
from raw_synth.models import create_model

CAMERA = {"name": "test-cam", "wb_gains": [2.1, 1.0, 1.0, 1.6],
          "xyz_to_cam": [[0.7, -0.2, -0.1], [-0.5, 1.3, 0.2], [-0.1, 0.2, 0.6]]}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny-isp.safetensors"
    return save_model(path, create_model("tiny"), kind="ssdnet-isp", extra={"camera": CAMERA})


@pytest.fixture(scope="module")
def engine(checkpoint) -> SSDNetEngine:
    return create_engine("ssdnet", checkpoint=checkpoint, device="cpu", tile=64, overlap=16)


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)


def test_engine_uses_torch_by_name():
    assert [engine_uses_torch(name) for name in list_engines()] == [False, True]
    with pytest.raises(RawSynthError, match=r"^unknown engine 'cyclesip': expected one of upi, ssdnet$"):
        engine_uses_torch("cyclesip")


def test_list_engines_and_upi_unchanged():
    assert list_engines() == ["upi", "ssdnet"]
    upi = create_engine("upi")
    assert isinstance(upi, UPIEngine) and isinstance(upi, InverseISP) and upi.name == "upi"
    result = upi.convert(np.full((8, 8, 3), 0.5, np.float32), np.random.default_rng(0))
    assert result.packed.shape == (4, 4, 4) and result.uncertainty is None
    with pytest.raises(RawSynthError) as info:
        create_engine("upi", checkpoint="x")
    assert str(info.value) == "engine 'upi' takes no options, got checkpoint"
    with pytest.raises(RawSynthError) as info:
        create_engine("cycleisp")
    assert str(info.value) == "unknown engine 'cycleisp': expected one of upi, ssdnet"


def test_ssdnet_engine_convert(engine, checkpoint):
    assert isinstance(engine, InverseISP) and engine.name == "ssdnet"
    assert engine.device == torch.device("cpu") and engine.camera_name == "test-cam"
    assert engine.checkpoint_sha256 == file_sha256(checkpoint)
    rgb = _image(70, 94)
    before = rgb.copy()
    result = engine.convert(rgb, np.random.default_rng(0))
    np.testing.assert_array_equal(rgb, before)
    assert isinstance(result, EngineResult)
    assert result.packed.shape == (4, 35, 47) and result.packed.dtype == np.float32
    assert result.packed.min() >= 0 and result.packed.max() <= 1
    assert result.wb_gains == (2.1, 1.0, 1.0, 1.6)
    np.testing.assert_array_equal(result.xyz_to_cam, np.array(CAMERA["xyz_to_cam"]))
    assert result.uncertainty is None
    assert result.params["camera"] == "test-cam" and result.params["test_resample"] == 0
    # The same as the model through predict_tiled, on the input lifted to SRGB_FLOOR.
    x = torch.from_numpy(np.maximum(rgb, engine_module.SRGB_FLOOR)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        expected = predict_tiled(engine.model, x, tile=64, overlap=16)["mu"][0].numpy()
    np.testing.assert_allclose(result.packed, expected, atol=1e-6)


def test_convert_draws_one_integer_from_rng(engine):
    rng = np.random.default_rng(5)
    result = engine.convert(_image(16, 16), rng)
    reference = np.random.default_rng(5)
    assert result.params["resample_seed"] == int(reference.integers(0, 2**63 - 1))
    assert rng.random() == reference.random()


def test_convert_batch_agrees_with_convert(engine):
    images = [_image(70, 94, 1), _image(32, 48, 2), _image(70, 94, 3), _image(70, 94, 4)]
    batch = engine.convert_batch(images, [np.random.default_rng(i) for i in range(4)])
    assert [r.packed.shape for r in batch] == [(4, 35, 47), (4, 16, 24), (4, 35, 47), (4, 35, 47)]
    for i, image in enumerate(images):
        single = engine.convert(image, np.random.default_rng(i))
        np.testing.assert_allclose(batch[i].packed, single.packed, atol=1e-5)
        assert batch[i].params == single.params
    assert engine.convert_batch([], []) == []


def test_test_resampling_is_deterministic_per_sample(checkpoint):
    engine = create_engine("ssdnet", checkpoint=checkpoint, device="cpu", test_resample=4, uncertainty=True,
                           batch_size=2)
    images = [_image(32, 32, 7), _image(32, 32, 8), _image(32, 32, 9)]
    first = engine.convert_batch(images, [np.random.default_rng(i) for i in range(3)])
    again = [engine.convert(image, np.random.default_rng(i)) for i, image in enumerate(images)]
    for a, b in zip(first, again):
        np.testing.assert_allclose(a.packed, b.packed, atol=1e-5)
        assert a.uncertainty is not None and a.uncertainty.shape == (4, 16, 16)
        np.testing.assert_allclose(a.uncertainty, b.uncertainty, atol=1e-5)
    other = engine.convert(images[0], np.random.default_rng(100))
    assert not np.allclose(other.packed, first[0].packed, atol=1e-4)


def test_self_ensemble_engine_runs(checkpoint):
    engine = create_engine("ssdnet", checkpoint=checkpoint, device="cpu", self_ensemble=True)
    result = engine.convert(_image(34, 18), np.random.default_rng(0))
    assert result.packed.shape == (4, 17, 9) and np.isfinite(result.packed).all()


def test_checkpoint_without_camera_uses_defaults(tmp_path, caplog):
    torch.manual_seed(0)
    path = save_model(tmp_path / "plain.safetensors", create_model("tiny"), kind="ssdnet-isp")
    with caplog.at_level(logging.WARNING, logger="raw_synth.engine"):
        engine = SSDNetEngine(path, InferenceOptions(device="cpu"))
    assert "checkpoint records no camera" in caplog.text
    result = engine.convert(_image(8, 8), np.random.default_rng(0))
    assert result.wb_gains == (2.0, 1.0, 1.0, 1.7)
    np.testing.assert_array_equal(result.xyz_to_cam, get_profile("unprocessing").xyz_to_cam_matrix)


def test_bundled_checkpoint(monkeypatch, tmp_path, checkpoint):
    monkeypatch.setattr(engine_module, "BUNDLED_CHECKPOINT", tmp_path / "absent.safetensors")
    assert bundled_checkpoint() is None
    with pytest.raises(RawSynthError) as info:
        create_engine("ssdnet")
    assert str(info.value) == "no bundled SSDNet checkpoint in this install: pass --model CKPT or use --engine upi"
    monkeypatch.setattr(engine_module, "BUNDLED_CHECKPOINT", checkpoint)
    assert bundled_checkpoint() == checkpoint
    assert create_engine("ssdnet", device="cpu").checkpoint == checkpoint


def test_ssdnet_engine_lifts_near_black_input(engine):
    """Input below one 8-bit code reaches the network as SRGB_FLOOR (1/255), and the caller's image is
    not modified; pixels at or above the floor are untouched."""
    assert engine_module.SRGB_FLOOR == 1.0 / 255.0
    image = _image(64, 64, seed=5)
    image[:20] = 0.0
    image[20:30] *= 0.003
    before = image.copy()
    lifted = np.maximum(image, np.float32(1.0 / 255.0))
    out = engine.convert(image, np.random.default_rng(0)).packed
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(out, engine.convert(lifted, np.random.default_rng(0)).packed)
    with torch.inference_mode():  # the network on the unlifted image gives something else
        unlifted = predict_tiled(engine.model, torch.from_numpy(image).permute(2, 0, 1)[None], tile=64, overlap=16)
    assert np.abs(unlifted["mu"][0].numpy() - out).max() > 1e-4


def test_bundled_ssdnet_renders_black_as_black():
    """The bundled checkpoint on a flat black image: RAW near 0 in every plane (it gave R = 0.07-0.19
    before the engine lifted near-black input)."""
    if bundled_checkpoint() is None:
        pytest.skip("no bundled checkpoint")
    packed = create_engine("ssdnet", device="cpu").convert(np.zeros((64, 64, 3), np.float32),
                                                           np.random.default_rng(0)).packed
    assert packed.shape == (4, 32, 32)
    assert packed.max() < 0.005


def test_error_cases(tmp_path, checkpoint):
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(RawSynthError) as info:
        create_engine("ssdnet", checkpoint=missing)
    assert str(info.value) == f"{missing}: checkpoint file not found"

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a safetensors file")
    with pytest.raises(RawSynthError) as info:
        create_engine("ssdnet", checkpoint=junk)
    assert str(info.value) == f"{junk}: not a safetensors checkpoint"

    torch.manual_seed(0)
    denoiser = save_model(tmp_path / "denoiser.safetensors", create_model("tiny"), kind="denoiser")
    with pytest.raises(RawSynthError) as info:
        create_engine("ssdnet", checkpoint=denoiser)
    assert str(info.value) == f"{denoiser}: checkpoint holds a 'denoiser' model, expected 'ssdnet-isp'"

    with pytest.raises(RawSynthError) as info:
        create_engine("ssdnet", checkpoint=checkpoint, tiles=3)
    assert str(info.value).startswith("engine 'ssdnet': unknown option(s) tiles; known: amp, batch_size,")
    with pytest.raises(RawSynthError) as info:
        create_engine("ssdnet", checkpoint=checkpoint, tile=100)
    assert str(info.value) == "tile must be a multiple of 16 and >= 32, got 100"

    no_sigma = save_model(tmp_path / "nosigma.safetensors", create_model("tiny", sigma_head=False), kind="ssdnet-isp")
    with pytest.raises(RawSynthError) as info:
        create_engine("ssdnet", checkpoint=no_sigma, uncertainty=True)
    assert str(info.value) == f"{no_sigma}: uncertainty needs a variance head, which this model has none of"

    bad_camera = save_model(tmp_path / "badcam.safetensors", create_model("tiny"), kind="ssdnet-isp",
                            extra={"camera": {"wb_gains": [1, 2], "xyz_to_cam": CAMERA["xyz_to_cam"]}})
    with pytest.raises(RawSynthError) as info:
        create_engine("ssdnet", checkpoint=bad_camera)
    assert str(info.value) == f"{bad_camera}: checkpoint camera wb_gains must be 4 positive numbers, got [1, 2]"


def test_cuda_device_unavailable(checkpoint):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RawSynthError, match="^device 'cuda': CUDA is not available"):
        create_engine("ssdnet", checkpoint=checkpoint, device="cuda")


@pytest.mark.parametrize(
    "image,message",
    [
        (np.zeros((7, 8, 3), np.float32), "image: height and width must be even, got 7x8"),
        (np.zeros((8, 8), np.float32), "image: expected an sRGB array of shape (H, W, 3), got (8, 8)"),
        (np.full((8, 8, 3), np.nan, np.float32), "image: holds NaN or infinite values"),
    ],
)
def test_bad_images(engine, image, message):
    with pytest.raises(RawSynthError) as info:
        engine.convert(image, np.random.default_rng(0))
    assert str(info.value) == message


def test_convert_batch_errors(engine):
    with pytest.raises(RawSynthError) as info:
        engine.convert_batch([_image(8, 8), _image(8, 8)], [np.random.default_rng(0)])
    assert str(info.value) == "convert_batch: 2 images but 1 generators"
    with pytest.raises(RawSynthError) as info:
        engine.convert_batch([_image(8, 8), np.zeros((9, 8, 3), np.float32)],
                             [np.random.default_rng(0), np.random.default_rng(1)])
    assert str(info.value) == "image 1: height and width must be even, got 9x8"
