"""Tests of raw_synth.lazy_torch and of the numpy-only paths that must not import torch.

``raw-synth generate --engine upi`` works on numpy arrays only; the modules it uses (the ISP, the
noise models, cfa) import torch, kornia and scipy only where a tensor or a special function is
used. The start-up checks run in a fresh interpreter, since this one has torch loaded already.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from raw_synth.lazy_torch import is_tensor, lazy_attribute

REPO = Path(__file__).resolve().parents[1]
#: Modules that a numpy-only run must not load. ``scipy`` itself is not among them: numba (the
#: dead-leaves kernels) imports it and ``scipy.linalg`` on its own.
HEAVY = ("torch", "kornia", "scipy.special", "scipy.ndimage")
MARK = "MODULES "


def _fresh_python(code: str) -> dict[str, bool]:
    """Run ``code`` in a new interpreter; return which of :data:`HEAVY` it had loaded at the end."""
    report = f"\nimport json, sys\nprint({MARK!r} + json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))\n"
    result = subprocess.run([sys.executable, "-c", code + report], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr
    line = [line for line in result.stdout.splitlines() if line.startswith(MARK)][-1]
    return json.loads(line[len(MARK):])


# ----------------------------------------------------------------------------- is_tensor


def test_is_tensor_tells_tensors_from_arrays_and_lists() -> None:
    assert is_tensor(torch.zeros(2)) is True
    assert is_tensor(torch.nn.Parameter(torch.zeros(2))) is True
    assert is_tensor(np.zeros(2)) is False
    assert is_tensor([0.0, 1.0]) is False
    assert is_tensor(None) is False


def test_is_tensor_does_not_import_torch() -> None:
    loaded = _fresh_python(
        "import numpy as np\n"
        "from raw_synth.lazy_torch import is_tensor\n"
        "assert not is_tensor(np.zeros(2)) and not is_tensor([1.0])\n"
    )
    assert loaded["torch"] is False


# ----------------------------------------------------------------------------- lazy_attribute


def test_lazy_attribute_makes_the_value_once_and_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    module = type(sys)("fake_lazy_module")
    monkeypatch.setitem(sys.modules, "fake_lazy_module", module)
    calls = []

    def define() -> type:
        calls.append(1)

        class Thing:
            pass

        Thing.__module__ = "fake_lazy_module"
        return Thing

    first = lazy_attribute("fake_lazy_module", "Thing", {"Thing": define})
    assert first.__qualname__ == "Thing"
    assert module.Thing is first and len(calls) == 1  # kept: later look-ups skip __getattr__
    with pytest.raises(AttributeError, match="has no attribute 'Other'"):
        lazy_attribute("fake_lazy_module", "Other", {"Thing": define})


def test_torch_classes_are_the_same_objects_everywhere_and_pickle() -> None:
    import raw_synth.isp as isp
    import raw_synth.isp.forward as forward_module
    import raw_synth.noise as noise
    import raw_synth.noise.models as models

    demosaic_module = sys.modules["raw_synth.isp.demosaic"]  # the package's name ``demosaic`` is the function

    assert noise.AddNoise is models.AddNoise
    assert isp.ForwardISP is forward_module.ForwardISP and isp.Demosaic is demosaic_module.Demosaic
    for cls, module in ((models.AddNoise, "raw_synth.noise.models"), (isp.ForwardISP, "raw_synth.isp.forward"),
                        (isp.Demosaic, "raw_synth.isp.demosaic")):
        assert issubclass(cls, torch.nn.Module)
        assert (cls.__module__, cls.__qualname__) == (module, cls.__name__)
    assert type(pickle.loads(pickle.dumps(isp.ForwardISP(tone=True)))) is isp.ForwardISP
    assert callable(isp.demosaic) and isp.demosaic is demosaic_module.demosaic  # the function, not the module
    with pytest.raises(AttributeError):
        _ = models.NoSuchName


# ----------------------------------------------------------------------------- numpy-only start-up


def test_importing_the_isp_and_noise_packages_loads_no_torch() -> None:
    loaded = _fresh_python(
        "import numpy as np\n"
        "import raw_synth.isp, raw_synth.noise, raw_synth.noise.profiles\n"
        "from raw_synth.engine import create_engine\n"
        "from raw_synth.noise import GaussianParams, apply_noise, to_dn\n"
        "result = create_engine('upi').convert(np.full((8, 8, 3), 0.5, np.float32), np.random.default_rng(0))\n"
        "noisy, _, _ = apply_noise(result.packed, GaussianParams(shot=0.01, read=1e-4), np.random.default_rng(0))\n"
        "to_dn(noisy, 64, 1023)\n"
    )
    assert loaded == dict.fromkeys(HEAVY, False)


def test_upi_generate_imports_neither_torch_nor_kornia(tmp_path: Path) -> None:
    out = tmp_path / "store"
    argv = ["raw-synth", "generate", "--n", "8", "--src", "deadleaves", "--engine", "upi", "--workers", "1",
            "--format", "hdf5", "--out", str(out)]
    loaded = _fresh_python(
        "import sys\n"
        "from raw_synth_cli import main\n"
        f"sys.argv = {argv!r}\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
    )
    assert json.loads((out / "manifest.json").read_text())["n_samples"] == 8
    assert loaded == dict.fromkeys(HEAVY, False)
