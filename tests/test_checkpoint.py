"""Safetensors checkpoints with the model config in their metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from raw_synth.checkpoint import file_sha256, load_model, read_checkpoint_metadata, save_model
from raw_synth.errors import RawSynthError
from raw_synth.models import create_model


def test_round_trip_rebuilds_identical_model(tmp_path: Path) -> None:
    model = create_model("tiny")
    path = save_model(tmp_path / "m.safetensors", model, kind="ssdnet-isp", extra={"steps": 3})
    loaded, meta = load_model(path, kind="ssdnet-isp")
    assert meta["architecture"] == "ssdnet" and meta["extra"] == {"steps": 3}
    assert meta["config"] == model.config.to_dict()
    x = torch.rand(1, 3, 32, 48)
    with torch.inference_mode():
        assert torch.equal(model.eval()(x)["mu"], loaded(x)["mu"])
    assert len(file_sha256(path)) == 64


def test_bad_checkpoints_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(RawSynthError, match=r"none.safetensors: checkpoint file not found$"):
        load_model(tmp_path / "none.safetensors", kind="ssdnet-isp")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(RawSynthError, match=r"junk.safetensors: not a safetensors checkpoint$"):
        read_checkpoint_metadata(junk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(RawSynthError, match=r"foreign.safetensors: not a raw-synth checkpoint"):
        load_model(foreign, kind="ssdnet-isp")
    other = save_model(tmp_path / "den.safetensors", create_model("tiny"), kind="denoiser")
    with pytest.raises(RawSynthError,
                       match=r"den.safetensors: checkpoint holds a 'denoiser' model, expected 'ssdnet-isp'$"):
        load_model(other, kind="ssdnet-isp")
    arch = save_model(tmp_path / "arch.safetensors", create_model("tiny"), kind="ssdnet-isp", architecture="unet")
    with pytest.raises(RawSynthError, match=r"arch.safetensors: unknown architecture 'unet'"):
        load_model(arch, kind="ssdnet-isp")
    # Weights of the small preset under the tiny config: shapes disagree.
    small = save_model(tmp_path / "mix.safetensors", create_model("tiny"), kind="ssdnet-isp")
    from safetensors import safe_open

    with safe_open(str(small), framework="pt") as handle:
        metadata = handle.metadata()
    state = {k: v for k, v in create_model("tiny", dim=8).state_dict().items()}
    save_file(state, str(small), metadata=metadata)
    with pytest.raises(RawSynthError, match=r"mix.safetensors: weights do not match the ssdnet config"):
        load_model(small, kind="ssdnet-isp")


def test_registered_architectures_load_and_unknown_ones_are_listed(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import asdict, dataclass

    from raw_synth.checkpoint import register_architecture
    from raw_synth.models import registry

    monkeypatch.setattr(registry, "_ARCHITECTURES", dict(registry._ARCHITECTURES))

    @dataclass(frozen=True)
    class ScaleConfig:
        channels: int = 4

        def to_dict(self) -> dict:
            return asdict(self)

    class Scale(torch.nn.Module):
        def __init__(self, config: ScaleConfig) -> None:
            super().__init__()
            self.config = config
            self.weight = torch.nn.Parameter(torch.full((config.channels,), 2.0))

    register_architecture("test-scale", lambda config: Scale(ScaleConfig(**config)))
    path = save_model(tmp_path / "s.safetensors", Scale(ScaleConfig(3)), kind="denoiser", architecture="test-scale")
    loaded, meta = load_model(path, kind="denoiser")
    assert isinstance(loaded, Scale) and loaded.config == ScaleConfig(3) and meta["architecture"] == "test-scale"
    unknown = save_model(tmp_path / "u.safetensors", create_model("tiny"), kind="ssdnet-isp", architecture="unet")
    with pytest.raises(RawSynthError, match=r"u.safetensors: unknown architecture 'unet' \(known: ssdnet, "
                                            r"ssdnet-denoiser,.* test-scale\)$"):
        load_model(unknown, kind="ssdnet-isp")
