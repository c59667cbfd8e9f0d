"""Hostile checkpoints and SIDD files: refused with one line before they can do harm.

* A checkpoint whose weights hold NaN or inf is refused by :func:`load_model` and so by every
  command (``convert``, ``denoise``, ``generate``'s engine, ``eval-sidd --model``), and a
  training state with NaN/inf values is refused on resume: nothing writes an all-zero DNG.
* An absurd architecture config (huge widths or block counts, too many parameters, or tensors
  that disagree with the config) is refused from the metadata and the safetensors header alone,
  in well under a second and without allocating the model.
* Truncated, overwritten or bit-flipped SIDD ``.mat`` files (MATLAB v5 and v7.3) make
  ``eval-sidd`` exit 2 with one ``error:`` line, never a traceback or a crash.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import save_file

from raw_synth.checkpoint import load_model, save_model
from raw_synth.errors import RawSynthError
from raw_synth.io import RawImage, write_dng, write_image
from raw_synth.models import create_model
from raw_synth_cli.cli import main
from tests.fixtures_sidd import write_sidd_blocks, write_sidd_metadata

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "raw_synth" / "data" / "checkpoints"
ISP = BUNDLED / "ssdnet-tiny-isp.safetensors"
DENOISER = BUNDLED / "denoiser-tiny.safetensors"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tensors_and_metadata(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}, dict(handle.metadata())


def _rewrite(src: Path, dst: Path, *, tensors: dict[str, torch.Tensor] | None = None,
             config: dict | None = None) -> Path:
    """Copy a checkpoint with some tensors replaced and/or another config (metadata kept)."""
    state, metadata = _tensors_and_metadata(src)
    state.update(tensors or {})
    if config is not None:
        metadata["config"] = json.dumps(config)
    save_file(state, str(dst), metadata=metadata)
    return dst


def _poisoned(src: Path, dst: Path, name: str, count: int, value: float) -> Path:
    """``src`` with the first ``count`` values of tensor ``name`` set to ``value``."""
    weight = _tensors_and_metadata(src)[0][name].clone()
    weight.view(-1)[:count] = value
    return _rewrite(src, dst, tensors={name: weight})


def _first_weight(path: Path) -> str:
    state, _ = _tensors_and_metadata(path)
    return sorted(name for name, value in state.items() if value.numel() >= 12)[0]


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"no bundled {path.name} in this checkout")
    return path


def _one_error_line(result) -> str:
    """The CLI's stderr: exactly one line starting with 'error:' and no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# ----------------------------------------------------------------------------- non-finite weights


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_checkpoint_is_refused_by_load_model(tmp_path: Path, value: float) -> None:
    model = create_model("tiny")
    path = save_model(tmp_path / "m.safetensors", model, kind="ssdnet-isp")
    name = _first_weight(path)
    bad = _poisoned(path, tmp_path / "bad.safetensors", name, 12, value)
    message = f"{bad}: checkpoint holds non-finite weights (tensor '{name}': 12 NaN/inf values)"
    with pytest.raises(RawSynthError) as caught:
        load_model(bad, kind="ssdnet-isp")
    assert str(caught.value) == message
    load_model(path, kind="ssdnet-isp")  # the untouched file still loads


def test_several_bad_tensors_are_counted_and_denoisers_refused(tmp_path: Path) -> None:
    src = _need(DENOISER)
    state, _ = _tensors_and_metadata(src)
    names = sorted(name for name, value in state.items() if value.is_floating_point())[:3]
    broken = {name: state[name].clone().fill_(float("nan")) for name in names}
    bad = _rewrite(src, tmp_path / "den.safetensors", tensors=broken)
    count = state[names[0]].numel()
    with pytest.raises(RawSynthError, match=rf"den\.safetensors: checkpoint holds non-finite weights "
                                            rf"\(tensor '{names[0]}': {count} NaN/inf values; 3 tensors in all\)$"):
        load_model(bad, kind="denoiser")


def test_engine_of_generate_refuses_a_nan_checkpoint(tmp_path: Path) -> None:
    from raw_synth.engine import SSDNetEngine

    bad = _poisoned(_need(ISP), tmp_path / "isp.safetensors", _first_weight(ISP), 1, float("nan"))
    with pytest.raises(RawSynthError, match=r"isp\.safetensors: checkpoint holds non-finite weights"):
        SSDNetEngine(bad)


def test_convert_refuses_a_nan_checkpoint_and_writes_no_dng(tmp_path: Path) -> None:
    good = _need(ISP)
    photo = tmp_path / "photo.png"
    yy, xx = np.mgrid[0:32, 0:48] / 48.0
    write_image(photo, np.stack([xx, yy, 0.5 * np.ones_like(xx)], axis=-1).astype(np.float32) * 0.8 + 0.1)
    runner = CliRunner()
    ok = runner.invoke(main, ["convert", str(photo), "--out", str(tmp_path / "ok"), "--engine", "ssdnet",
                              "--model", str(good)])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "ok" / "photo.dng").is_file()

    name = _first_weight(good)
    bad = _poisoned(good, tmp_path / "nan.safetensors", name, 12, float("nan"))
    result = runner.invoke(main, ["convert", str(photo), "--out", str(tmp_path / "bad"), "--engine", "ssdnet",
                                  "--model", str(bad)])
    line = _one_error_line(result)
    assert line == f"error: {bad}: checkpoint holds non-finite weights (tensor '{name}': 12 NaN/inf values)"
    assert not list(tmp_path.glob("bad/**/*.dng"))


def test_denoise_refuses_a_nan_checkpoint_and_writes_no_dng(tmp_path: Path) -> None:
    good = _need(DENOISER)
    rng = np.random.default_rng(0)
    dn = np.round(64 + 900 * rng.uniform(0.2, 0.8, (32, 48)))
    raw = RawImage.from_mosaic(dn, "RGGB", black_level=64, white_level=1023, wb=(2.0, 1.0, 1.0, 1.6),
                               xyz_to_cam=np.eye(3), noise_profile=(4e-4, 2e-6), iso=400, camera="Test Cam")
    source = write_dng(tmp_path / "in.dng", raw)
    args = [str(source), "--tile", "32"]
    runner = CliRunner()
    ok = runner.invoke(main, ["denoise", *args, "--model", str(good), "--out", str(tmp_path / "ok.dng")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "ok.dng").is_file()

    bad = _poisoned(good, tmp_path / "inf.safetensors", _first_weight(good), 5, float("inf"))
    result = runner.invoke(main, ["denoise", *args, "--model", str(bad), "--out", str(tmp_path / "bad.dng")])
    line = _one_error_line(result)
    assert line.startswith(f"error: {bad}: checkpoint holds non-finite weights (tensor ")
    assert line.endswith(": 5 NaN/inf values)")
    assert not (tmp_path / "bad.dng").exists()


def test_denoise_writes_no_dng_when_a_finite_model_gives_nan(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import denoise.inference
    from denoise.denoise_file import denoise_file

    rng = np.random.default_rng(0)
    dn = np.round(64 + 900 * rng.uniform(0.2, 0.8, (32, 48)))
    raw = RawImage.from_mosaic(dn, "RGGB", black_level=64, white_level=1023, wb=(2.0, 1.0, 1.0, 1.6),
                               xyz_to_cam=np.eye(3), noise_profile=(4e-4, 2e-6), iso=400, camera="Test Cam")
    source = write_dng(tmp_path / "in.dng", raw)
    monkeypatch.setattr(denoise.inference, "denoise_packed",
                        lambda model, noisy, *args, **kwargs: np.full_like(noisy, np.nan, dtype=np.float32))
    with pytest.raises(RawSynthError, match=r"denoiser-tiny\.safetensors: the denoiser gave non-finite values "
                                            r"for .*in\.dng; no DNG written$"):
        denoise_file(source, _need(DENOISER), tmp_path / "out.dng")
    assert not (tmp_path / "out.dng").exists()


def test_training_state_with_non_finite_values_is_refused(tmp_path: Path) -> None:
    from raw_synth.training.state import load_training_state, save_training_state

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(4, 3)).sum().backward()
    optimizer.step()
    path = save_training_state(tmp_path / "state.safetensors", model=model, optimizer=optimizer, step=1)
    load_training_state(path, model=model, optimizer=optimizer, restore_random=False)

    state, metadata = _tensors_and_metadata(path)
    moment = state["optim/0/exp_avg"].clone()
    moment.view(-1)[:2] = float("nan")
    save_file({**state, "optim/0/exp_avg": moment}, str(path), metadata=metadata)
    with pytest.raises(RawSynthError) as caught:
        load_training_state(path, model=model, optimizer=optimizer, restore_random=False)
    assert str(caught.value) == (f"{path}: training state holds non-finite values "
                                 "(tensor 'optim/0/exp_avg': 2 NaN/inf values)")


# ----------------------------------------------------------------------------- absurd configs


def test_absurd_configs_are_refused_by_field_without_allocating(tmp_path: Path) -> None:
    """In a fresh process, so that its peak memory shows any allocation of the model."""
    model = create_model("tiny")
    good = save_model(tmp_path / "tiny.safetensors", model, kind="ssdnet-isp")
    config = model.config.to_dict()
    cases = {
        "wide": ({**config, "dim": 10**6}, r"model config field 'dim' = 1000000 is beyond the limit 4096"),
        "deep": ({**config, "enc_blocks": [10**5, 1, 1, 1]},
                 r"model config field 'enc_blocks\[0\]' = 100000 is beyond the limit 4096"),
        "blocks": ({**config, "enc_blocks": [4000, 1, 1, 1]},
                   r"model config field 'enc_blocks' asks for 4003 blocks .* more than the 119 tensors in the file"),
        "nonfinite": ({**config, "ffn_factor": float("nan")},
                      r"model config field 'ffn_factor' is not a finite number"),
        # 3.4e9 parameters (13.8 GB) on the meta device only.
        "params": ({**config, "dim": 1024}, r"model config asks for 3,443,343,480 parameters, more than the limit"),
        # 8.6e8 parameters (3.4 GB) would fit the limit: the header's shapes refuse it.
        "shapes": ({**config, "dim": 512}, r"weights do not match the ssdnet config \(tensor '.*' has shape \[.*\] "
                                           r"in the file, the config gives \[.*\]; \d+ tensor\(s\) differ\)"),
    }
    paths = {key: str(_rewrite(good, tmp_path / f"{key}.safetensors", config=cfg)) for key, (cfg, _) in cases.items()}
    script = f"""
import json, resource, sys, time
import torch
from raw_synth.checkpoint import load_model
from raw_synth.errors import RawSynthError
load_model({str(good)!r}, kind="ssdnet-isp")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {{}}
for key, path in json.loads(sys.argv[1]).items():
    start = time.perf_counter()
    try:
        load_model(path, kind="ssdnet-isp")
        message = "loaded"
    except RawSynthError as error:
        message = str(error)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    out[key] = [message, time.perf_counter() - start, grown]
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", script, json.dumps(paths)], capture_output=True, text=True,
                          cwd=REPO, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for key, (_, pattern) in cases.items():
        message, seconds, grown_kib = results[key]
        assert message.startswith(f"{paths[key]}: "), (key, message)
        assert "\n" not in message
        assert re.search(pattern, message), (key, message)
        assert seconds < 1.0, (key, seconds)
        assert grown_kib < 200 * 1024, (key, grown_kib)  # nothing near the model's size was allocated


def test_shape_mismatch_names_the_tensor(tmp_path: Path) -> None:
    model = create_model("tiny")
    good = save_model(tmp_path / "tiny.safetensors", model, kind="ssdnet-isp")
    state, _ = _tensors_and_metadata(good)
    name = sorted(state)[0]
    wrong = _rewrite(good, tmp_path / "wrong.safetensors", tensors={name: torch.zeros(*state[name].shape, 2)})
    with pytest.raises(RawSynthError, match=rf"wrong\.safetensors: weights do not match the ssdnet config "
                                            rf"\(tensor '{name}' has shape .* 1 tensor\(s\) differ\)$"):
        load_model(wrong, kind="ssdnet-isp")
    del state[name]
    missing = tmp_path / "missing.safetensors"
    save_file(state, str(missing), metadata=_tensors_and_metadata(good)[1])
    with pytest.raises(RawSynthError, match=rf"missing\.safetensors: weights do not match the ssdnet config "
                                            rf"\(1 tensor\(s\) missing, e\.g\. '{name}'\)$"):
        load_model(missing, kind="ssdnet-isp")


@pytest.mark.parametrize("path, kind", [(ISP, "ssdnet-isp"), (DENOISER, "denoiser")])
def test_bundled_checkpoints_load_unchanged(path: Path, kind: str) -> None:
    model, _ = load_model(_need(path), kind=kind)
    state, _ = _tensors_and_metadata(path)
    loaded = model.state_dict()
    assert sorted(loaded) == sorted(state)
    assert all(torch.equal(loaded[name], state[name]) for name in state)
    assert not model.training and all(p.requires_grad and not p.is_meta for p in model.parameters())


# ----------------------------------------------------------------------------- damaged SIDD .mat files

SCENE = "0001_001_S6_00100_00060_3200_L"


def _sidd_folder(folder: Path, *, v73: bool = False, compressed: bool = False) -> Path:
    """A one-image validation split (2 blocks of 32x32) and its metadata file."""
    rng = np.random.default_rng(1)
    gt = rng.uniform(0.1, 0.8, (1, 2, 32, 32)).astype(np.float32)
    noisy = np.clip(gt + 0.01 * rng.standard_normal(gt.shape), 0, 1).astype(np.float32)
    folder.mkdir(parents=True)
    for name, blocks in (("ValidationNoisyBlocksRaw", noisy), ("ValidationGtBlocksRaw", gt)):
        if compressed:
            scipy.io.savemat(str(folder / f"{name}.mat"), {name: blocks}, do_compression=True)
        else:
            write_sidd_blocks(folder / f"{name}.mat", blocks, v73=v73)
    (folder / "meta" / SCENE).mkdir(parents=True)
    write_sidd_metadata(folder / "meta" / SCENE / "0001_METADATA_RAW_010.MAT", scene=SCENE)
    return folder


def _eval_sidd(folder: Path, out: Path):
    return CliRunner().invoke(main, ["eval-sidd", "--sidd-dir", str(folder), "--out", str(out), "--no-baselines",
                                     "--no-plots", "--metadata-dir", str(folder / "meta")])


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _overwrite_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(np.random.default_rng(7).integers(0, 256, 64, dtype=np.uint8))
    path.write_bytes(bytes(data))


def _flip_middle_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _break_local_heap(path: Path) -> None:
    """Damage the signature of the HDF5 local heap that names the file's variables."""
    data = path.read_bytes()
    assert b"HEAP" in data
    path.write_bytes(data.replace(b"HEAP", b"HEAQ", 1))


@pytest.mark.parametrize("layout, damage", [
    ("v5", _truncate),
    ("v5", _overwrite_middle),
    ("compressed", _flip_middle_bit),
    ("compressed", _truncate),
    ("v73", _truncate),
    ("v73", _break_local_heap),
])
def test_eval_sidd_on_a_damaged_mat_is_one_line(tmp_path: Path, layout: str, damage) -> None:
    folder = _sidd_folder(tmp_path / "sidd", v73=layout == "v73", compressed=layout == "compressed")
    ok = _eval_sidd(folder, tmp_path / "ok")
    assert ok.exit_code == 0, ok.output
    damage(folder / "ValidationNoisyBlocksRaw.mat")
    line = _one_error_line(_eval_sidd(folder, tmp_path / "bad"))
    assert line.startswith(f"error: {folder / 'ValidationNoisyBlocksRaw.mat'}: "), line


def _small_element_offsets(data: bytes) -> list[int]:
    """Offsets of 8-aligned small data elements holding one miUINT8 byte (tag ``02 00 01 00``)."""
    return [i for i in range(128, len(data) - 8, 8) if data[i:i + 4] == b"\x02\x00\x01\x00"]


def test_bit_flipped_metadata_tag_is_one_line_not_a_crash(tmp_path: Path) -> None:
    """A flipped bit in a small element's type made scipy's v5 reader crash the interpreter.

    Run in a child process: the regression it guards against is a segmentation fault.
    """
    folder = _sidd_folder(tmp_path / "sidd")
    meta = folder / "meta" / SCENE / "0001_METADATA_RAW_010.MAT"
    data = bytearray(meta.read_bytes())
    offsets = _small_element_offsets(bytes(data))
    assert offsets
    data[offsets[-1]] |= 0x80  # miUINT8 (2) becomes type 130
    meta.write_bytes(bytes(data))
    code = ("import sys; from raw_synth_cli.cli import main; "
            "sys.argv = ['raw-synth'] + sys.argv[1:]; main()")
    done = subprocess.run([sys.executable, "-c", code, "eval-sidd", "--sidd-dir", str(folder), "--out",
                           str(tmp_path / "out"), "--no-baselines", "--no-plots", "--metadata-dir",
                           str(folder / "meta")], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [f"error: {meta}: not a readable SIDD .mat file "
                                        "(bad small data element (type 130, 1 bytes))"]


def test_sidd_readers_refuse_damage_directly(tmp_path: Path) -> None:
    from raw_synth.io.sidd import read_sidd_blocks, read_sidd_metadata

    folder = _sidd_folder(tmp_path / "sidd", compressed=True)
    blocks = folder / "ValidationNoisyBlocksRaw.mat"
    before = read_sidd_blocks(blocks)
    _flip_middle_bit(blocks)
    with pytest.raises(RawSynthError, match=r"ValidationNoisyBlocksRaw\.mat: not a readable SIDD \.mat file "
                                            r"\(compressed variable is damaged"):
        read_sidd_blocks(blocks)
    assert before.shape == (1, 2, 32, 32)
    meta = folder / "meta" / SCENE / "0001_METADATA_RAW_010.MAT"
    meta.write_bytes(meta.read_bytes()[:200])
    with pytest.raises(RawSynthError, match=r"0001_METADATA_RAW_010\.MAT: not a readable SIDD \.mat file \("):
        read_sidd_metadata(meta)
