"""Tests of the shared one-job helpers: the tiler, file sha256, the per-plane parser, the bundled
checkpoint paths and the CPU settings (threads, allocator)."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from raw_synth.bundled_checkpoints import (
    BUNDLED_CHECKPOINT_DIR,
    DENOISER_CHECKPOINT,
    ISP_CHECKPOINT,
    bundled_checkpoint_path,
    find_checkpoint,
)
from raw_synth.cpu_tuning import set_malloc, set_torch_threads, torch_threads, tune_cpu_allocator
from raw_synth.errors import RawSynthError
from raw_synth.file_hash import file_sha256
from raw_synth.per_plane import per_plane
from raw_synth.tiling import blend_layout, blend_windows, crop_layout, pad_bottom_right, tiled_apply


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def _box3(x: torch.Tensor) -> torch.Tensor:
    """A local 3x3 box filter with zero padding: a tile needs 1 pixel of context to be exact."""
    weight = torch.full((x.shape[1], 1, 3, 3), 1.0 / 9.0, dtype=x.dtype)
    return F.conv2d(x, weight, padding=1, groups=x.shape[1])


# ----------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("size, tile, overlap", [(96, 32, 16), (100, 64, 8), (514, 512, 32), (34, 32, 0)])
def test_blend_layout_covers_with_the_overlap(size, tile, overlap):
    length, starts = blend_layout(size, tile, overlap, align=16, step=2)
    assert length <= tile and length % 16 == 0
    assert starts[0] == 0 and starts[-1] == size - length
    assert all(s % 2 == 0 for s in starts)
    assert all(b - a <= length - overlap for a, b in zip(starts, starts[1:]))


def test_blend_layout_one_piece_when_it_fits():
    assert blend_layout(30, 32, 16) == (30, [0])


def test_crop_layout_cores_partition_the_axis():
    spans = crop_layout(21, 8, 3)
    assert [(a, b) for a, b, _, _ in spans] == [(0, 8), (8, 16), (16, 21)]
    assert [(c, d) for _, _, c, d in spans] == [(0, 11), (5, 19), (13, 21)]


def test_blend_windows_ramp_only_towards_neighbours():
    first, middle, last = blend_windows([0, 16, 32], 32, scale=2)
    assert first[0] == 1 and first[-1] < 1
    assert middle[0] < 1 and middle[-1] < 1
    assert last[0] < 1 and last[-1] == 1
    assert all(bool((w > 0).all()) for w in (first, middle, last))


# ----------------------------------------------------------------------------- tiler


@pytest.mark.parametrize("tile, overlap", [(8, 1), (5, 2), (16, 4), (7, 1)])
def test_crop_policy_is_exact_with_enough_context(tile, overlap):
    x = torch.rand(2, 3, 19, 26, generator=torch.Generator().manual_seed(0))
    out = tiled_apply(lambda t: {"y": _box3(t)}, [x], tile, overlap, policy="crop")
    assert torch.equal(out["y"], _box3(x))


def test_crop_policy_passes_every_input_and_batches_tiles():
    x = torch.rand(1, 4, 40, 42, generator=torch.Generator().manual_seed(1))
    v = torch.rand(1, 4, 40, 42, generator=torch.Generator().manual_seed(2))
    calls = []

    def fn(a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        calls.append(a.shape[0])
        return {"sum": a + b, "prod": a * b}

    one = tiled_apply(fn, [x, v], 8, 2, policy="crop")
    n_single = len(calls)
    calls.clear()
    many = tiled_apply(fn, [x, v], 8, 2, policy="crop", tile_batch=3)
    assert torch.equal(one["sum"], x + v) and torch.equal(one["prod"], x * v)
    assert torch.equal(many["sum"], one["sum"]) and torch.equal(many["prod"], one["prod"])
    assert max(calls) == 3 and len(calls) < n_single


def test_blend_policy_with_scale_is_exact_for_a_pointwise_model():
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))

    def fn(t: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mu": F.avg_pool2d(t, 2).repeat(1, 2, 1, 1)[:, :4]}

    out = tiled_apply(fn, [x], 32, 16, policy="blend", scale=2, align=16)
    torch.testing.assert_close(out["mu"], fn(x)["mu"], rtol=0, atol=1e-6)
    batched = tiled_apply(fn, [x], 32, 16, policy="blend", scale=2, align=16, tile_batch=4)
    torch.testing.assert_close(batched["mu"], out["mu"], rtol=0, atol=1e-6)


def test_one_tile_is_the_untiled_call():
    x = torch.rand(1, 2, 10, 12)
    result = {"y": x * 3}
    assert tiled_apply(lambda t: result, [x], 16, 4)["y"] is result["y"]
    assert tiled_apply(lambda t: result, [x], None, policy="crop")["y"] is result["y"]


def test_pad_multiple_pads_each_call_and_crops_back():
    x = torch.rand(1, 4, 9, 13)
    seen = []

    def fn(t: torch.Tensor) -> dict[str, torch.Tensor]:
        seen.append(tuple(t.shape[-2:]))
        return {"y": t + 1}

    out = tiled_apply(fn, [x], None, pad_multiple=16)
    assert seen == [(16, 16)] and torch.equal(out["y"], x + 1)


def test_pad_bottom_right_reflects_or_replicates_both_axes():
    x = torch.arange(2 * 5 * 40, dtype=torch.float32).reshape(1, 2, 5, 40)
    aligned = torch.zeros(1, 1, 16, 32)
    assert pad_bottom_right(aligned, 16) is aligned
    padded = pad_bottom_right(x, 16)  # 11 rows of padding > 5 rows: both axes replicate
    assert padded.shape == (1, 2, 16, 48)
    assert torch.equal(padded[..., 5:, :40], x[..., 4:5, :].expand(1, 2, 11, 40))
    assert torch.equal(padded[..., :5, 40:], x[..., :, 39:40].expand(1, 2, 5, 8))
    small = torch.arange(6 * 6, dtype=torch.float32).reshape(1, 1, 6, 6)
    assert torch.equal(pad_bottom_right(small, 8), F.pad(small, (0, 2, 0, 2), mode="reflect"))


def test_device_runs_the_tiles_there_and_returns_home():
    x = torch.rand(1, 1, 12, 12)
    devices = []

    def fn(t: torch.Tensor) -> dict[str, torch.Tensor]:
        devices.append(t.device.type)
        return {"y": t}

    out = tiled_apply(fn, [x], 4, 1, policy="crop", device="cpu")
    assert set(devices) == {"cpu"} and out["y"].device == x.device and torch.equal(out["y"], x)


@pytest.mark.parametrize("kwargs, message", [
    (dict(policy="mean"), r"^tiled_apply: policy must be one of blend, crop, got 'mean'$"),
    (dict(tile=0), r"^tiled_apply: tile must be a positive integer or None, got 0$"),
    (dict(overlap=8), r"^tiled_apply: overlap must be an integer >= 0 \(< tile for blending\), got 8$"),
    (dict(scale=5), r"^tiled_apply: size 12x12 is not a multiple of scale 5$"),
    (dict(tile_batch=0), r"^tiled_apply: tile_batch must be a positive integer, got 0$"),
])
def test_tiled_apply_errors(kwargs, message):
    args = dict(tile=8, overlap=2, policy="blend") | kwargs
    with pytest.raises(RawSynthError, match=message):
        tiled_apply(lambda t: {"y": t}, [torch.zeros(1, 1, 12, 12)], **args)


def test_tiled_apply_refuses_mismatched_inputs_and_outputs():
    with pytest.raises(RawSynthError, match=r"^tiled_apply: inputs differ in batch or size"):
        tiled_apply(lambda a, b: {"y": a}, [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 6)], 4)
    with pytest.raises(RawSynthError, match=r"^tiled_apply: inputs must be one or more \(B, C, H, W\) tensors$"):
        tiled_apply(lambda a: {"y": a}, [torch.zeros(8, 8)], 4)
    with pytest.raises(RawSynthError, match=r"^tiled_apply: output 'y' has shape \(1, 1, 2, 2\) for a tile"):
        tiled_apply(lambda a: {"y": a[..., :2, :2]}, [torch.zeros(1, 1, 8, 8)], 4, policy="crop")


# ----------------------------------------------------------------------------- sha256


def test_file_sha256_matches_hashlib_across_blocks(tmp_path: Path):
    data = np.random.default_rng(0).bytes((1 << 20) + 12345)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(path)) == file_sha256(path)


def test_checkpoint_file_sha256_is_the_shared_one(tmp_path: Path):
    from raw_synth.checkpoint import file_sha256 as checkpoint_sha256

    path = tmp_path / "x.bin"
    path.write_bytes(b"raw-synth")
    assert checkpoint_sha256(path) == hashlib.sha256(b"raw-synth").hexdigest()


# ----------------------------------------------------------------------------- per-plane values


@pytest.mark.parametrize("value, expected", [
    (0.5, [0.5] * 4), ([2], [2.0] * 4), ((1, 2, 3, 4), [1.0, 2.0, 3.0, 4.0]),
    (np.array([[1, 2], [3, 4]]), [1.0, 2.0, 3.0, 4.0]), (np.float32(7), [7.0] * 4),
])
def test_per_plane_accepts_one_or_four_numbers(value, expected):
    out = per_plane(value)
    assert out is not None and out.dtype == np.float64 and out.tolist() == expected


def test_per_plane_refuses_other_counts_and_shapes():
    assert per_plane([1, 2]) is None and per_plane([]) is None
    assert per_plane([2], flatten=False) is None
    assert per_plane(np.ones((2, 2)), flatten=False) is None
    assert per_plane(np.ones((1, 4)), flatten=False) is None
    assert per_plane(3, flatten=False).tolist() == [3.0] * 4
    with pytest.raises((TypeError, ValueError)):
        per_plane("dark")


def test_per_plane_returns_a_copy():
    source = np.array([1.0, 2.0, 3.0, 4.0])
    out = per_plane(source)
    out[0] = 9
    assert source[0] == 1.0


# ----------------------------------------------------------------------------- bundled checkpoints


def test_bundled_checkpoint_paths_are_the_package_data():
    from denoise.denoise_file import bundled_denoiser
    from raw_synth.engine import BUNDLED_CHECKPOINT

    folder = Path(__file__).resolve().parents[1] / "raw_synth" / "data" / "checkpoints"
    assert BUNDLED_CHECKPOINT_DIR == folder.resolve()
    assert bundled_checkpoint_path(ISP_CHECKPOINT) == BUNDLED_CHECKPOINT
    assert bundled_checkpoint_path(DENOISER_CHECKPOINT) == bundled_denoiser()
    assert BUNDLED_CHECKPOINT.is_file() and bundled_denoiser().is_file()


def test_find_checkpoint_takes_a_file_or_a_bundled_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from denoise.denoise_file import bundled_denoiser

    own = tmp_path / "mine.safetensors"
    own.write_bytes(b"x")
    assert find_checkpoint(own) == own and find_checkpoint(str(own)) == own
    assert find_checkpoint("denoiser-tiny") == bundled_denoiser()
    assert find_checkpoint("ssdnet-tiny-isp") == bundled_checkpoint_path(ISP_CHECKPOINT)
    for missing in ("denoiser-huge", "runs/denoiser-tiny", "../checkpoints/denoiser-tiny", str(tmp_path / "none")):
        assert find_checkpoint(missing) is None, missing
    # a file of the bundled name in the working folder is a file: it wins over the bundled model
    monkeypatch.chdir(tmp_path)
    (tmp_path / "denoiser-tiny").write_bytes(b"y")
    assert find_checkpoint("denoiser-tiny") == Path("denoiser-tiny")


# ----------------------------------------------------------------------------- CPU settings


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(KeyError):
        with torch_threads(2):
            raise KeyError("x")
    assert torch.get_num_threads() == before


def test_set_torch_threads_returns_the_count_before():
    before = torch.get_num_threads()
    try:
        assert set_torch_threads(2) == before
        assert set_torch_threads(2) == 2
    finally:
        torch.set_num_threads(before)


def test_allocator_settings_are_booleans_and_tuning_is_idempotent():
    assert isinstance(set_malloc(1 << 30), bool)
    first = tune_cpu_allocator()
    assert isinstance(first, bool) and tune_cpu_allocator() is first


_THREAD_FAULTS = """
import os, resource, sys, threading
import numpy as np
if sys.argv[1] == "tuned":
    from raw_synth.cpu_tuning import tune_process_allocator
    assert tune_process_allocator()
def work():  # a task thread that allocates, fills and frees a 96 MiB array ten times
    for _ in range(10):
        a = np.empty(12 << 20); a.fill(1.0); del a
threading.Thread(target=work).start()  # the parent gets a thread of its own before it forks
read, write = os.pipe()
if os.fork() == 0:  # the child: its task thread's faults
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = threading.Thread(target=work); t.start(); t.join()
    os.write(write, str(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before).encode()); os._exit(0)
os.wait()
print(os.read(read, 64).decode())
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_one_arena_set_first_keeps_a_forked_task_thread_from_faulting_again() -> None:
    # glibc's defaults in the child, whatever malloc settings earlier tests (Dask clusters) left in this environment
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}

    def faults(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", _THREAD_FAULTS, mode], capture_output=True, text=True, check=True,
                             env=env)
        return int(run.stdout.strip())

    # default: the child's thread takes a spare arena of the parent and every array is a fresh mmap (10 x 96 MiB
    # faulted in: about 246 000 faults in 4 KiB pages, about 5 700 where transparent huge pages serve part of it);
    # tuned: the main arena keeps the freed array for the next one (one array faulted in)
    default, tuned = faults("default"), faults("tuned")
    assert default > 4 * tuned, (default, tuned)


# ------------------------------------------------------------------------------- config field metadata


def test_run_only_fields_drive_every_identity_check() -> None:
    from denoise.config import TrainConfig as DenoiserRecipe
    from pipelines.config import IDENTITY_FIELDS, RUN_ONLY_FIELDS, GenerateConfig
    from raw_synth.config_fields import MISSING, first_difference, identity_view
    from raw_synth.training.config import TrainConfig as IspRecipe

    assert RUN_ONLY_FIELDS == ("out", "workers", "scheduler", "device", "overwrite", "cache_mb", "resume_check")
    assert set(IDENTITY_FIELDS) | set(RUN_ONLY_FIELDS) == set(GenerateConfig.__dataclass_fields__)
    assert "max_pixels" in IDENTITY_FIELDS and "seed" in IDENTITY_FIELDS
    view = identity_view(DenoiserRecipe())
    assert sorted(view) == ["datasets", "network", "train"]
    assert "num_workers" not in view["datasets"] and "path" not in view["datasets"]
    assert "max_steps" not in view["train"] and "lr" in view["train"]
    isp = identity_view(IspRecipe())
    assert sorted(isp) == ["data", "name", "network", "seed", "train"]
    assert "threads" not in isp["train"] and "cache" not in isp["data"]
    assert first_difference({"a": {"b": 1}}, {"a": {"b": 2}}) == ("a.b", 1, 2)
    assert first_difference({"a": 1}, {}) == ("a", 1, MISSING) and first_difference({"x": [1]}, {"x": [1]}) is None


# ------------------------------------------------------------------------------- the one noise-level type


def test_noise_level_is_the_type_of_calibrated_and_denoiser_noise() -> None:
    from denoise.inference import noise_variance
    from raw_synth.calibrate.nlf import NoiseFit
    from raw_synth.errors import RawSynthError
    from raw_synth.noise_level import NoiseLevel

    level = NoiseLevel(2e-3, [1e-5, 2e-5, 3e-5, 4e-5])
    assert level.shot.tolist() == [2e-3] * 4 and not level.shot.flags.writeable
    np.testing.assert_array_equal(level.variance(0.25), 2e-3 * 0.25 + np.array([1e-5, 2e-5, 3e-5, 4e-5]))
    noisy = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32) - 0.1
    np.testing.assert_array_equal(level.variance_map(noisy), noise_variance(noisy, 2e-3, [1e-5, 2e-5, 3e-5, 4e-5]))
    assert level.variance_map(noisy).dtype == np.float32 and level.variance_map(noisy).min() >= 0
    assert level.noise_profile[3] == (2e-3, 4e-5)
    fit = NoiseFit(1e-3, 2e-6, "pairs")
    assert isinstance(fit, NoiseLevel) and fit.variance(1.0).tolist() == [1e-3 + 2e-6] * 4
    with pytest.raises(RawSynthError, match=r"^NoiseLevel.read: expected 1 or 4 values, got 3$"):
        NoiseLevel(0.0, [1, 2, 3])
    with pytest.raises(RawSynthError, match=r"^NoiseFit.shot: values must be finite and >= 0, got \[-1.0"):
        NoiseFit(-1.0, 0.0, "pairs")
