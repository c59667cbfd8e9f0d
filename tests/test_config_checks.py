"""The shared field checks (raw_synth.config_checks) and the messages the four config readers build on them."""

from __future__ import annotations

import dataclasses
import doctest
from typing import Any, Callable

import numpy as np
import pytest

from raw_synth import config_checks as checks
from raw_synth.errors import RawSynthError


def _message(call: Callable[[], Any]) -> str:
    with pytest.raises(RawSynthError) as info:
        call()
    return str(info.value)


def test_docstring_examples() -> None:
    assert doctest.testmod(checks).failed == 0


def test_fail_and_is_integer() -> None:
    assert str(checks.fail("--n", "bad")) == "--n: bad"
    assert checks.is_integer(3) and not checks.is_integer(True) and not checks.is_integer(3.0)
    assert not checks.is_integer(np.int64(3)) and checks.is_integer(np.int64(3), numpy=True)
    assert not checks.is_integer(np.bool_(1), numpy=True)


@pytest.mark.parametrize(
    "kwargs, value, message",
    [
        ({}, 0, "L: expected an integer >= 1, got 0"),
        ({}, True, "L: expected an integer >= 1, got True"),
        ({}, 2.0, "L: expected an integer >= 1, got 2.0"),
        # numpy's repr depends on its global print options (a library may set legacy mode): filled in below
        ({}, np.int64(2), "L: expected an integer >= 1, got {!r}"),
        ({"maximum": 16}, 17, "L: expected an integer from 1 to 16, got 17"),
        ({"wording": "must"}, "x", "L: expected an integer, got 'x'"),
        ({"wording": "must"}, 0, "L: must be >= 1, got 0"),
        ({"wording": "must", "maximum": 16}, 17, "L: must be <= 16, got 17"),
    ],
)
def test_integer_refuses(kwargs: dict[str, Any], value: Any, message: str) -> None:
    assert _message(lambda: checks.integer(value, "L", 1, **kwargs)) == message.replace("{!r}", repr(value))


def test_integer_accepts() -> None:
    assert checks.integer(1, "L", 1) == 1
    value = checks.integer(np.int64(5), "L", 1, numpy=True)
    assert value == 5 and type(value) is int
    assert checks.integer(16, "L", 1, maximum=16, wording="must") == 16


@pytest.mark.parametrize(
    "kwargs, value, message",
    [
        ({}, "x", "L: expected a number, got 'x'"),
        ({}, True, "L: expected a number, got True"),
        ({}, float("nan"), "L: expected a number, got nan"),
        ({"non_finite": "a finite number"}, float("inf"), "L: expected a finite number, got inf"),
        ({"positive": True}, 0, "L: expected a number > 0, got 0"),
        ({"minimum": 0.0, "below": 1.0}, 1.0, "L: expected a number >= 0 and < 1, got 1.0"),
        ({"wording": "must", "kind": "a finite number"}, None, "L: expected a finite number, got None"),
        ({"wording": "must", "kind": "a finite number"}, float("nan"), "L: expected a finite number, got nan"),
        ({"wording": "must", "positive": True}, -2, "L: must be positive, got -2"),
        ({"wording": "must", "minimum": 0.5}, 0.25, "L: must be >= 0.5, got 0.25"),
        ({"wording": "must", "below": 1}, 1, "L: must be below 1, got 1"),
    ],
)
def test_number_refuses(kwargs: dict[str, Any], value: Any, message: str) -> None:
    assert _message(lambda: checks.number(value, "L", **kwargs)) == message


def test_number_returns_float() -> None:
    value = checks.number(2, "L", minimum=0)
    assert value == 2.0 and type(value) is float
    assert checks.number(np.float64(0.5), "L", minimum=0.0, below=1.0) == 0.5


def test_boolean_and_choice() -> None:
    assert checks.boolean(False, "L") is False
    assert _message(lambda: checks.boolean(1, "L")) == "L: expected true or false, got 1"
    assert checks.choice("b", ("a", "b"), "L") == "b"
    assert _message(lambda: checks.choice("c", ("a", "b"), "L")) == "L: expected one of a, b, got 'c'"
    assert _message(lambda: checks.choice("c", ("a", "b"), "L", listing="or")) == "L: expected a or b, got 'c'"
    assert checks.choice(np.int64(2), (1, 2, 4), "L") == 2 and checks.choice(2.0, (1, 2, 4), "L") == 2
    assert _message(lambda: checks.choice(True, (1, 2), "L")) == "L: expected one of 1, 2, got True"
    assert _message(lambda: checks.choice(None, ("a", "b"), "L")) == "L: expected one of a, b, got None"


@pytest.mark.parametrize(
    "kwargs, value, ok",
    [
        ({}, "x", True), ({}, " ", False), ({}, "", False), ({}, 3, False),
        ({"blank": True}, " ", True), ({"blank": True}, "", False),
        ({"empty": True}, "", True), ({"empty": True}, None, False),
    ],
)
def test_text(kwargs: dict[str, Any], value: Any, ok: bool) -> None:
    if ok:
        assert checks.text(value, "L", **kwargs) == value
    else:
        assert _message(lambda: checks.text(value, "L", "a name", **kwargs)) == f"L: expected a name, got {value!r}"


def test_sequence_plane_values_and_optional() -> None:
    assert checks.sequence((1, 2), "L", "two numbers", length=2) == (1, 2)
    assert _message(lambda: checks.sequence([1], "L", "two numbers", length=2)) == "L: expected two numbers, got [1]"
    assert _message(lambda: checks.sequence([], "L", "a list")) == "L: expected a list, got []"
    assert checks.plane_values(2, "L") == (2.0, 2.0, 2.0, 2.0)
    assert checks.plane_values([1, 2, 3, 4], "L") == (1.0, 2.0, 3.0, 4.0)
    assert _message(lambda: checks.plane_values([1, 2], "L")) == "L: expected 1 or 4 numbers, got 2"
    assert _message(lambda: checks.plane_values(["a"], "L")) == "L: expected a number, got 'a'"
    assert _message(lambda: checks.plane_values([1, 2, np.nan, 4], "L")) == "L: expected a finite number, got nan"
    assert checks.optional(checks.integer, None, "L", 1) is None
    assert checks.optional(checks.integer, 3, "L", 1) == 3
    assert _message(lambda: checks.optional(checks.integer, 0, "L", 1, wording="must")) == "L: must be >= 1, got 0"


def test_check_known() -> None:
    checks.check_known({"a": 1}, ("a", "b"), "S: unknown field(s)")
    assert checks.unknown_names({"z": 1, 1: 2, "a": 3}, ("a",)) == ["1", "z"]
    assert _message(lambda: checks.check_known({"z": 1, "y": 2, "a": 3}, ("b", "a"), "S: unknown field(s)")) == (
        "S: unknown field(s) y, z; known: b, a")


# What each config reader says through the shared checks (one case per kind of check and wording).
def _generate(**changes: Any) -> None:
    from pipelines.config import GenerateConfig, check_options

    check_options(dataclasses.replace(GenerateConfig(n=4, out="o"), **changes))


def _isp(data: dict[str, Any]) -> None:
    from raw_synth.training.config import TrainConfig

    TrainConfig.from_dict(data)


def _denoiser(data: dict[str, Any]) -> None:
    from denoise.config import TrainConfig

    TrainConfig.from_dict(data, "bad.yaml")


def _profile(**changes: Any) -> None:
    from raw_synth.camera import parse_profile

    parse_profile({"name": "c", "cfa": "RGGB", "bit_depth": 12, "black_level": 64, "white_level": 4000,
                   "xyz_to_cam": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], **changes}, "canon.yaml")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: _generate(seed=-1), "--seed: expected an integer >= 0, got -1"),
        (lambda: _generate(downscale=True), "--downscale: expected one of 1, 2, 4, got True"),
        (lambda: _generate(clean_dtype="int8"), "--clean-dtype: expected float16 or float32, got 'int8'"),
        (lambda: _generate(format="npz"), "--format: expected one of zarr, hdf5, got 'npz'"),
        (lambda: _generate(patch=33), "--patch: expected an even number of pixels >= 2, got 33"),
        (lambda: _generate(scheduler=" "), "--scheduler: expected an address such as tcp://host:8786, got ' '"),
        (lambda: _generate(out=""), "--out: expected a folder path, got an empty string"),
        (lambda: _isp({"train": {"total_steps": "x"}}), "train.total_steps: expected an integer, got 'x'"),
        (lambda: _isp({"train": {"lr": 0}}), "train.lr: must be positive, got 0"),
        (lambda: _isp({"train": {"lr": "x"}}), "train.lr: expected a finite number, got 'x'"),
        (lambda: _isp({"train": {"betas": [0.9]}}), "train.betas: expected two numbers, got [0.9]"),
        (lambda: _isp({"train": {"threads": 0}}), "train.threads: must be >= 1, got 0"),
        (lambda: _isp({"train": {"device": ""}}), "train.device: expected auto, cpu or cuda[:N], got ''"),
        (lambda: _isp({"data": {"render": {"output_bps": 12}}}), "data.render.output_bps: expected 8 or 16, got 12"),
        (lambda: _isp({"logger": {"plot": 1}}), "logger.plot: expected true or false, got 1"),
        (lambda: _isp({"val": {"fraction": 1}}), "val.fraction: must be below 1, got 1.0"),
        (lambda: _isp({"val": {"holdout": "x"}}),
         "val.holdout: expected one of auto, split-file, right-columns, images, none, got 'x'"),
        (lambda: _isp({"name": ""}), "name: expected a non-empty string, got ''"),
        (lambda: _isp({"data": {"render": {"dpi": 1}}}),
         "data.render: unknown key(s) dpi; known: adjust_maximum_thr, demosaic, output_bps, use_camera_wb"),
        (lambda: _denoiser({"datasets": {"val_fraction": 1}}),
         "bad.yaml: datasets.val_fraction: expected a number >= 0 and < 1, got 1"),
        (lambda: _denoiser({"datasets": {"crop": 1}}),
         "bad.yaml: datasets.crop: expected null, an integer >= 2 or [h, w] (packed pixels), got 1"),
        (lambda: _denoiser({"datasets": {"path": 3}}),
         "bad.yaml: datasets.path: expected a folder path or null, got 3"),
        (lambda: _denoiser({"train": {"lr": float("nan")}}), "bad.yaml: train.lr: expected a number, got nan"),
        (lambda: _denoiser({"train": {"lr": 0}}), "bad.yaml: train.lr: expected a number > 0, got 0"),
        (lambda: _denoiser({"train": {"amp": "fp8"}}),
         "bad.yaml: train.amp: expected one of auto, bf16, fp16, off, got 'fp8'"),
        (lambda: _denoiser({"train": {"betas": [0.9, 1.0]}}),
         "bad.yaml: train.betas: expected a number >= 0 and < 1, got 1.0"),
        (lambda: _denoiser({"logger": {"plot": "yes"}}), "bad.yaml: logger.plot: expected true or false, got 'yes'"),
        (lambda: _denoiser({"network": {"name": 3}}), "bad.yaml: network.name: expected a preset name, got 3"),
        (lambda: _profile(white_level=float("inf")),
         "canon.yaml: field 'white_level': expected a finite number, got inf"),
        (lambda: _profile(description=3), "canon.yaml: field 'description': expected a string, got 3"),
        (lambda: _profile(white_balance={"blue_gain": [1]}),
         "canon.yaml: field 'white_balance.blue_gain': expected [low, high], got [1]"),
        (lambda: _profile(noise={"model": " ", "sampler": "s"}),
         "canon.yaml: field 'noise.model': expected a non-empty string, got ' '"),
    ],
)
def test_config_messages(call: Callable[[], Any], message: str) -> None:
    assert _message(call) == message
