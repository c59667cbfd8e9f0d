"""Tests of raw_synth.inference: tiling, blending, options, self-ensemble and test-time resampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from raw_synth.cfa import pack
from raw_synth.cpu_tuning import torch_threads
from raw_synth.errors import RawSynthError
from raw_synth.inference import (
    InferenceOptions,
    blend_window,
    predict_tiled,
    resolve_device,
    run_inference,
    tile_layout,
    tune_cpu_allocator,
)
from raw_synth.models import create_model, self_ensemble_x8, test_resample


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the tiny model's small tiles gain nothing from two, and a busy 2-core
    machine makes OpenMP barriers very slow."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return create_model("tiny").eval()


class CFASampler(nn.Module):
    """A purely local 'inverse ISP': samples the RGGB mosaic of the input (R, G, G, B sites)."""

    def predict(self, x: torch.Tensor, with_sigma: bool = False) -> dict[str, torch.Tensor | None]:
        mosaic = x[:, 1].clone()
        mosaic[:, 0::2, 0::2] = x[:, 0, 0::2, 0::2]
        mosaic[:, 1::2, 1::2] = x[:, 2, 1::2, 1::2]
        mu = pack(mosaic, "RGGB")
        return {"mu": mu, "sigma": 0.5 * mu if with_sigma else None}


def _rand(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _natural(height: int, width: int) -> torch.Tensor:
    from raw_synth.corpora import load_sample

    image = load_sample("astronaut")[:height, :width]
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


# ----------------------------------------------------------------------------- tiling helpers


@pytest.mark.parametrize("size,tile,overlap", [(512, 256, 32), (1000, 512, 32), (994, 512, 32), (70, 32, 16),
                                               (514, 512, 0), (4000, 512, 64), (96, 96, 0), (1024, 512, 32)])
def test_tile_layout_covers_with_even_offsets_and_enough_overlap(size, tile, overlap):
    length, starts = tile_layout(size, tile, overlap)
    assert length <= tile and length % 16 == 0
    assert starts[0] == 0 and starts[-1] == size - length
    assert all(s % 2 == 0 for s in starts)
    assert all(b > a for a, b in zip(starts, starts[1:]))
    assert all(a + length - b >= overlap for a, b in zip(starts, starts[1:]))
    # The fewest tiles: one fewer full-size tile could not overlap by `overlap`.
    assert (len(starts) - 2) * (tile - overlap) + tile < size
    # The shortest tiles (in steps of 16) that achieve it.
    assert len(starts) * (length - 16) - (len(starts) - 1) * overlap < size


def test_tile_layout_examples():
    assert tile_layout(512, 256, 32) == (192, [0, 160, 320])
    assert tile_layout(992, 512, 32) == (512, [0, 480])
    assert tile_layout(1024, 512, 32) == (368, [0, 328, 656])
    assert tile_layout(300, 512, 32) == (300, [0])
    assert tile_layout(70, 32, 16) == (32, [0, 12, 24, 38])


def test_blend_window_values():
    window = blend_window(10, 4, True, True)
    expected_up = 0.5 - 0.5 * np.cos(np.pi * (np.arange(4) + 0.5) / 4)
    np.testing.assert_allclose(window[:4].numpy(), expected_up, atol=1e-7)
    np.testing.assert_allclose(window[-4:].numpy(), expected_up[::-1], atol=1e-7)
    np.testing.assert_array_equal(window[4:6].numpy(), [1.0, 1.0])
    assert (window > 0).all()
    # Rising and falling ramps of complementary tiles add to one.
    np.testing.assert_allclose((blend_window(4, 4, True, False) + blend_window(4, 4, False, True)).numpy(), 1.0,
                               atol=1e-6)
    np.testing.assert_array_equal(blend_window(6, 0, True, True).numpy(), np.ones(6))
    np.testing.assert_array_equal(blend_window(6, 3, False, False).numpy(), np.ones(6))


# ----------------------------------------------------------------------------- predict_tiled


@pytest.mark.parametrize("height,width", [(70, 94), (2, 2), (34, 18)])
def test_predict_tiled_shapes_for_odd_multiples(tiny, height, width):
    x = _rand((2, 3, height, width))
    with torch.inference_mode():
        one = predict_tiled(tiny, x, tile=512, overlap=32, with_sigma=True)
        many = predict_tiled(tiny, x, tile=32, overlap=16, with_sigma=True)
    for out in (one, many):
        assert set(out) == {"mu", "sigma"}
        for value in out.values():
            assert value.shape == (2, 4, height // 2, width // 2) and value.dtype == torch.float32
            assert torch.isfinite(value).all() and value.min() >= 0 and value.max() <= 1
    assert set(predict_tiled(tiny, x, tile=32, overlap=16)) == {"mu"}


def test_predict_tiled_is_untiled_when_image_fits_one_tile(tiny):
    x = _rand((2, 3, 70, 94), seed=1)
    with torch.inference_mode():
        reference = tiny.predict(x, with_sigma=True)
        for tile in (96, 512):
            tiled = predict_tiled(tiny, x, tile=tile, overlap=32, with_sigma=True)
            for key in ("mu", "sigma"):
                assert torch.allclose(tiled[key], reference[key], atol=1e-4, rtol=0)
                assert torch.equal(tiled[key], reference[key])  # the very same call


def test_predict_tiled_blending_is_exact_for_a_local_model():
    """A model without global context gives the untiled result from any tiling, Bayer phase kept."""
    model = CFASampler()
    x = _rand((1, 3, 70, 94), seed=2)
    reference = model.predict(x, with_sigma=True)
    for tile, overlap in ((32, 16), (32, 0), (48, 10), (64, 32)):
        tiled = predict_tiled(model, x, tile=tile, overlap=overlap, with_sigma=True)
        for key in ("mu", "sigma"):
            torch.testing.assert_close(tiled[key], reference[key], atol=1e-6, rtol=0)


def test_predict_tiled_multi_tile_is_close_on_a_natural_image(tiny):
    """Several tiles differ slightly from one pass (global attention/pooling), but stay > 45 dB.

    Measured with this untrained tiny model on the astronaut crop (384x512, tile 256, overlap 32,
    six tiles of 208x192): about 53 dB for mu.
    """
    x = _natural(384, 512)
    with torch.inference_mode():
        full = tiny.predict(x)["mu"]
        tiled = predict_tiled(tiny, x, tile=256, overlap=32)["mu"]
    mse = torch.mean((tiled - full) ** 2).item()
    assert mse > 0  # tiles really are not the same computation
    assert 10 * math.log10(1.0 / mse) > 45.0


def test_predict_tiled_is_deterministic(tiny):
    x = _rand((1, 3, 70, 94), seed=3)
    with torch.inference_mode():
        first = predict_tiled(tiny, x, tile=32, overlap=16)["mu"]
        second = predict_tiled(tiny, x, tile=32, overlap=16)["mu"]
    assert torch.equal(first, second)


def test_predict_tiled_does_not_modify_input(tiny):
    x = _rand((1, 3, 40, 40), seed=4)
    before = x.clone()
    with torch.inference_mode():
        predict_tiled(tiny, x, tile=32, overlap=16)
    assert torch.equal(x, before)


@pytest.mark.parametrize(
    "rgb,kwargs,message",
    [
        (torch.rand(1, 3, 10, 11), {}, "rgb: height and width must be even for a Bayer mosaic, got 10x11"),
        (torch.rand(1, 4, 10, 10), {}, "rgb: expected RGB of shape (B, 3, H, W), got (1, 4, 10, 10)"),
        (torch.zeros(1, 3, 10, 10, dtype=torch.uint8), {},
         "rgb: expected a float tensor in [0, 1], got dtype torch.uint8"),
        (np.zeros((1, 3, 10, 10)), {}, "rgb: expected a torch tensor (B, 3, H, W), got ndarray"),
        (torch.rand(1, 3, 10, 10), {"tile": 40}, "tile must be a multiple of 16 and >= 32, got 40"),
        (torch.rand(1, 3, 10, 10), {"overlap": 3}, "overlap must be an even integer in [0, tile/2 = 256], got 3"),
    ],
)
def test_predict_tiled_errors(tiny, rgb, kwargs, message):
    with pytest.raises(RawSynthError) as info:
        predict_tiled(tiny, rgb, **kwargs)
    assert str(info.value) == message


def test_predict_tiled_sigma_needs_a_variance_head():
    torch.manual_seed(0)
    model = create_model("tiny", sigma_head=False).eval()
    with pytest.raises(RawSynthError, match="has no variance head"):
        predict_tiled(model, torch.rand(1, 3, 16, 16), with_sigma=True)


# ----------------------------------------------------------------------------- options


def test_inference_options_defaults_and_validation():
    options = InferenceOptions()
    assert (options.device, options.amp, options.channels_last, options.tile, options.overlap,
            options.test_resample, options.self_ensemble, options.batch_size) == ("auto", False, False, 512, 32, 0,
                                                                                  False, 8)
    assert InferenceOptions(device="cuda:1").device == "cuda:1"
    for kwargs, message in [
        ({"device": "tpu"}, "device must be one of auto, cpu, cuda, mps (or cuda:N), got 'tpu'"),
        ({"amp": 1}, "amp must be a boolean, got 1"),
        ({"tile": 500}, "tile must be a multiple of 16 and >= 32, got 500"),
        ({"tile": 16}, "tile must be a multiple of 16 and >= 32, got 16"),
        ({"overlap": 300}, "overlap must be an even integer in [0, tile/2 = 256], got 300"),
        ({"test_resample": -1}, "test_resample must be a non-negative integer, got -1"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"self_ensemble": "yes"}, "self_ensemble must be a boolean, got 'yes'"),
    ]:
        with pytest.raises(RawSynthError) as info:
            InferenceOptions(**kwargs)
        assert str(info.value) == message


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    mps = getattr(torch.backends, "mps", None)
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
    elif mps is not None and mps.is_available():
        assert resolve_device("auto").type == "mps"
    else:
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(RawSynthError, match="^device 'cuda': CUDA is not available on this machine"):
            resolve_device("cuda")
    with pytest.raises(RawSynthError, match="^device must be one of"):
        resolve_device("gpu")


def test_tune_cpu_allocator_is_idempotent():
    first = tune_cpu_allocator()
    assert isinstance(first, bool)
    assert tune_cpu_allocator() is first


# ----------------------------------------------------------------------------- run_inference


def test_run_inference_plain_equals_predict_tiled(tiny):
    x = _rand((3, 3, 70, 94), seed=5)
    out = run_inference(tiny, x, InferenceOptions(tile=32, overlap=16, batch_size=2), with_sigma=True)
    with torch.inference_mode():
        reference = predict_tiled(tiny, x, tile=32, overlap=16, with_sigma=True)
    for key in ("mu", "sigma"):
        torch.testing.assert_close(out[key], reference[key], atol=1e-5, rtol=0)
    assert set(run_inference(tiny, x, InferenceOptions(tile=32, overlap=16))) == {"mu"}


def test_run_inference_amp_is_ignored_on_cpu(tiny):
    x = _rand((1, 3, 32, 48), seed=6)
    plain = run_inference(tiny, x, InferenceOptions(device="cpu"))["mu"]
    amp = run_inference(tiny, x, InferenceOptions(device="cpu", amp=True))["mu"]
    assert torch.equal(plain, amp)


def test_channels_last_gives_the_same_output():
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    x = _rand((2, 3, 70, 94), seed=7)
    reference = run_inference(model, x, InferenceOptions(tile=32, overlap=16), with_sigma=True)
    model_cl = create_model("tiny").eval()
    model_cl.load_state_dict(model.state_dict())
    model_cl = model_cl.to(memory_format=torch.channels_last)
    out = run_inference(model_cl, x, InferenceOptions(tile=32, overlap=16, channels_last=True), with_sigma=True)
    for key in ("mu", "sigma"):
        torch.testing.assert_close(out[key], reference[key], atol=1e-5, rtol=0)


def test_test_resampling_matches_models_test_resample(tiny):
    x = _rand((1, 3, 70, 94), seed=8)
    generators = [torch.Generator().manual_seed(123)]
    out = run_inference(tiny, x, InferenceOptions(test_resample=5), generators)
    assert set(out) == {"mu"} and out["mu"].shape == (1, 4, 35, 47)
    with torch.inference_mode():
        reference = test_resample(tiny, x, n_samples=5, generator=torch.Generator().manual_seed(123))
    torch.testing.assert_close(out["mu"], reference, atol=1e-5, rtol=0)
    plain = run_inference(tiny, x)["mu"]
    assert not torch.allclose(out["mu"], plain, atol=1e-4)


def test_test_resampling_is_per_image_and_deterministic(tiny):
    x = _rand((2, 3, 32, 32), seed=9)
    options = InferenceOptions(test_resample=3, batch_size=1)
    both = run_inference(tiny, x, options, [torch.Generator().manual_seed(s) for s in (1, 2)], with_sigma=True)
    again = run_inference(tiny, x, options, [torch.Generator().manual_seed(s) for s in (1, 2)], with_sigma=True)
    assert torch.equal(both["mu"], again["mu"]) and torch.equal(both["sigma"], again["sigma"])
    # Image 1 alone with its generator gives the same as inside the batch.
    alone = run_inference(tiny, x[1:], options, [torch.Generator().manual_seed(2)])["mu"]
    torch.testing.assert_close(alone, both["mu"][1:], atol=1e-6, rtol=0)
    other = run_inference(tiny, x[1:], options, [torch.Generator().manual_seed(3)])["mu"]
    assert not torch.allclose(other, alone, atol=1e-4)


def test_test_resampling_needs_generators_and_sigma(tiny):
    x = _rand((2, 3, 16, 16))
    with pytest.raises(RawSynthError) as info:
        run_inference(tiny, x, InferenceOptions(test_resample=2), [torch.Generator()])
    assert str(info.value) == "generators: test_resample needs one torch.Generator per image (2), got 1"
    torch.manual_seed(0)
    no_sigma = create_model("tiny", sigma_head=False).eval()
    with pytest.raises(RawSynthError, match="has no variance head"):
        run_inference(no_sigma, x, InferenceOptions(test_resample=2), [torch.Generator(), torch.Generator()])


def test_self_ensemble_of_a_local_model_is_exact():
    """CFA sampling commutes with the Bayer-aware dihedral ensemble, through tiling too."""
    model = CFASampler()
    x = _rand((2, 3, 70, 94), seed=10)
    out = run_inference(model, x, InferenceOptions(self_ensemble=True, tile=32, overlap=16), with_sigma=True)
    reference = model.predict(x, with_sigma=True)
    torch.testing.assert_close(out["mu"], reference["mu"], atol=1e-6, rtol=0)
    torch.testing.assert_close(out["sigma"], reference["sigma"], atol=1e-6, rtol=0)


def test_self_ensemble_with_ssdnet(tiny):
    x = _rand((2, 3, 70, 94), seed=11)
    options = InferenceOptions(self_ensemble=True, tile=64, overlap=16)
    out = run_inference(tiny, x, options, with_sigma=True)
    for value in out.values():
        assert value.shape == (2, 4, 35, 47) and torch.isfinite(value).all()
        assert value.min() >= 0 and value.max() <= 1
    with torch.inference_mode():
        expected_mu = self_ensemble_x8(lambda t: predict_tiled(tiny, t, 64, 16)["mu"], x)
    torch.testing.assert_close(out["mu"], expected_mu, atol=1e-5, rtol=0)
    # Combined with resampling: runs, right shape, deterministic.
    gens = lambda: [torch.Generator().manual_seed(s) for s in (0, 1)]  # noqa: E731
    opts = InferenceOptions(self_ensemble=True, test_resample=2, tile=64, overlap=16)
    first = run_inference(tiny, x, opts, gens())["mu"]
    assert first.shape == (2, 4, 35, 47)
    assert torch.equal(first, run_inference(tiny, x, opts, gens())["mu"])
