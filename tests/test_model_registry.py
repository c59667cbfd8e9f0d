"""The one model registry: both task families, presets, errors, checkpoints resolved without side effects."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import raw_synth
from raw_synth.checkpoint import load_model, save_model
from raw_synth.errors import RawSynthError
from raw_synth.models import DenoiserConfig, SSDNet, SSDNetBody, SSDNetConfig, SSDNetDenoiser, registry

build_model, create_model, get_config = registry.build_model, registry.create_model, registry.get_config
list_architectures, list_models, model_entry = registry.list_architectures, registry.list_models, registry.model_entry
register_model = registry.register_model

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "raw_synth" / "data" / "checkpoints"
ISP = BUNDLED / "ssdnet-tiny-isp.safetensors"
DENOISER = BUNDLED / "denoiser-tiny.safetensors"

ISP_PRESETS = ["small", "ssdnet-paper", "tiny"]
DENOISER_PRESETS = ["denoiser-paper", "denoiser-tiny"]

#: Outputs of the bundled checkpoints on the inputs of :func:`_inputs`, recorded with the code before
#: the registry was unified (one torch thread): ``(sum, values at flat indices 0, 777, 2048, -1)``. The
#: denoiser's were recorded again for the fine-tuned checkpoint (2026-12-03).
RECORDED = {
    "mu": (1057.0482811195543, [0.1807138, 0.1736753, 0.2899534, 0.153736]),
    "sigma": (109.42610487908678, [0.0242367, 0.0164482, 0.0187144, 0.0231567]),
    "denoised": (2289.2351649138145, [0.6503299, 0.6618873, 0.5325518, 0.9179456]),
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1234)
    rgb = torch.rand(2, 3, 40, 56, generator=gen)
    noisy = torch.rand(2, 4, 20, 28, generator=gen)
    return rgb, noisy, 1e-3 * noisy + 1e-5


def _assert_recorded(out: torch.Tensor, key: str) -> None:
    total, values = RECORDED[key]
    flat = out.double().flatten()
    assert flat.sum().item() == pytest.approx(total, rel=1e-6)
    torch.testing.assert_close(flat[[0, 777, 2048, -1]], torch.tensor(values, dtype=torch.float64),
                               atol=1e-6, rtol=0)


def test_registry_lists_both_families() -> None:
    assert list_models() == sorted(ISP_PRESETS + DENOISER_PRESETS)
    assert raw_synth.list_models() == list_models()
    assert list_models(kind="ssdnet-isp") == ISP_PRESETS and list_models(kind="denoiser") == DENOISER_PRESETS
    assert list_models("denoiser-*") == DENOISER_PRESETS and list_models("*tiny") == ["denoiser-tiny", "tiny"]
    assert {"ssdnet", "ssdnet-denoiser"} <= set(list_architectures())
    entry = model_entry("denoiser-tiny")
    assert (entry.kind, entry.architecture, entry.model_class) == ("denoiser", "ssdnet-denoiser", SSDNetDenoiser)
    assert model_entry("tiny").model_class is SSDNet and model_entry("tiny").description


@pytest.mark.parametrize("name", ISP_PRESETS + DENOISER_PRESETS)
def test_create_model_builds_every_preset(name: str) -> None:
    with torch.device("meta"):
        model = raw_synth.create_model(name)
    entry = model_entry(name)
    assert isinstance(model, SSDNetBody) and type(model) is entry.model_class
    assert model.config == get_config(name) == entry.config and type(model).kind == entry.kind
    rebuilt = build_model(entry.architecture, model.config.to_dict()) if name.endswith("tiny") else model
    assert list(rebuilt.state_dict()) == list(model.state_dict())


def test_presets_run_and_take_overrides() -> None:
    torch.manual_seed(0)
    isp = create_model("tiny", sigma_head=False).eval()
    den = create_model("denoiser-tiny", conditioned=True, dim=8).eval()
    assert isp.sigma_head is None and den.embed.in_channels == 8 and den.config.dim == 8
    with torch.inference_mode():
        assert isp.predict(torch.rand(1, 3, 16, 16))["mu"].shape == (1, 4, 8, 8)
        noisy = torch.rand(1, 4, 8, 8)
        assert den.predict(noisy, noisy * 1e-3).shape == (1, 4, 8, 8)
    # The ISP and the denoiser share one body: the same submodules up to the task heads.
    isp_parts = [name for name, _ in create_model("tiny").named_children()]
    den_parts = [name for name, _ in create_model("denoiser-tiny").named_children()]
    assert isp_parts[0] == "stem" and isp_parts[-3:] == ["to_rgb", "mean_head", "sigma_head"]
    assert isp_parts[1:-3] == den_parts[:-1] and den_parts[-1] == "output"


def test_unknown_names_give_one_line_errors_listing_the_known_ones() -> None:
    with pytest.raises(RawSynthError) as caught:
        create_model("huge")
    assert str(caught.value) == ("unknown model 'huge': expected one of "
                                 "denoiser-paper, denoiser-tiny, small, ssdnet-paper, tiny")
    with pytest.raises(RawSynthError, match=r"^unknown denoiser 'tiny': expected one of denoiser-paper, "
                                            r"denoiser-tiny$"):
        create_model("tiny", kind="denoiser")
    with pytest.raises(RawSynthError, match=r"^unknown model 'denoiser-tiny': expected one of small, ssdnet-paper, "
                                            r"tiny$"):
        get_config("denoiser-tiny", kind="ssdnet-isp")
    with pytest.raises(RawSynthError, match=r"^model 'denoiser-tiny': unknown override\(s\) sigma_head; known: bias, "):
        create_model("denoiser-tiny", sigma_head=False)
    with pytest.raises(RawSynthError, match=r"^unknown architecture 'unet' \(known: .*ssdnet, ssdnet-denoiser"):
        build_model("unet", {})
    from raw_synth.training.config import NetworkConfig

    with pytest.raises(RawSynthError, match=r"^network: unknown model 'denoiser-tiny': expected one of small, "):
        NetworkConfig(preset="denoiser-tiny")  # the ISP trainer takes inverse-ISP presets only


def test_one_set_of_config_checks() -> None:
    assert [f.name for f in dataclasses.fields(SSDNetConfig)][-2:] == ["sigma_head", "sigma_blocks"]
    assert [f.name for f in dataclasses.fields(DenoiserConfig)][-1] == "conditioned"
    for config_class in (SSDNetConfig, DenoiserConfig):
        with pytest.raises(RawSynthError, match="^dim must be even"):
            config_class(dim=7)
        with pytest.raises(RawSynthError, match="^heads: 3 heads do not divide the 8 channels of level 1$"):
            config_class(dim=8, heads=(3, 1, 1, 1))
        with pytest.raises(RawSynthError, match="^bias must be a boolean, got 1$"):
            config_class(bias=1)  # type: ignore[arg-type]
    with pytest.raises(RawSynthError, match="^sigma_blocks must be a non-negative integer, got -1$"):
        SSDNetConfig(sigma_blocks=-1)
    assert SSDNetConfig().in_channels == 3 and DenoiserConfig(conditioned=True).in_channels == 8
    with pytest.raises(RawSynthError, match=r"^config: expected a DenoiserConfig, got SSDNetConfig$"):
        SSDNetDenoiser(SSDNetConfig())  # type: ignore[arg-type]


def test_register_model_refuses_duplicates_and_foreign_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))

    @register_model(SSDNetDenoiser)
    def denoiser_micro() -> DenoiserConfig:
        """A test preset."""
        return DenoiserConfig(dim=2, enc_blocks=(0, 0, 0, 0), dec_blocks=(0, 0, 0), refinement_blocks=0,
                              heads=(1, 1, 1, 1))

    assert "denoiser-micro" in list_models(kind="denoiser") and create_model("denoiser-micro").config.dim == 2
    assert model_entry("denoiser-micro").description == "A test preset."
    with pytest.raises(RawSynthError, match="^model 'tiny' is already registered$"):
        register_model(SSDNet, name="tiny")(lambda: SSDNetConfig())
    with pytest.raises(RawSynthError, match="^model 'isp-x': expected a SSDNetConfig, got DenoiserConfig$"):
        register_model(SSDNet, name="isp-x")(lambda: DenoiserConfig())


def test_bundled_checkpoints_give_the_recorded_outputs() -> None:
    rgb, noisy, variance = _inputs()
    isp, isp_meta = load_model(ISP, kind="ssdnet-isp")
    den, den_meta = load_model(DENOISER, kind="denoiser")
    assert isinstance(isp, SSDNet) and isinstance(den, SSDNetDenoiser)
    assert (isp_meta["architecture"], den_meta["architecture"]) == ("ssdnet", "ssdnet-denoiser")
    # The stored config rebuilds a model with the file's tensor names, in the order of the presets.
    for model, meta in ((isp, isp_meta), (den, den_meta)):
        assert list(build_model(meta["architecture"], meta["config"]).state_dict()) == list(model.state_dict())
    with torch.inference_mode():
        out = isp.predict(rgb, with_sigma=True)
        _assert_recorded(out["mu"], "mu")
        _assert_recorded(out["sigma"], "sigma")
        _assert_recorded(den.predict(noisy, variance), "denoised")


def test_save_model_names_the_architecture_of_the_model(tmp_path: Path) -> None:
    model = create_model("denoiser-tiny", dim=4, heads=(1, 1, 1, 1))
    path = save_model(tmp_path / "d.safetensors", model, kind="denoiser")
    loaded, meta = load_model(path, kind="denoiser")
    assert meta["architecture"] == "ssdnet-denoiser" and loaded.config == model.config


def test_loading_a_denoiser_needs_no_registering_import() -> None:
    code = (
        "import sys\n"
        "from raw_synth.checkpoint import load_model\n"
        f"model, meta = load_model({str(DENOISER)!r}, kind='denoiser')\n"
        "assert not any(name == 'denoise' or name.startswith('denoise.') for name in sys.modules)\n"
        "print(type(model).__name__, meta['architecture'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["SSDNetDenoiser", "ssdnet-denoiser"]
