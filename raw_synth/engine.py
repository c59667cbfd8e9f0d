"""Inverse-ISP engines: one interface from an sRGB photo to a clean camera RAW image.

Two engines share the :class:`InverseISP` interface:

* ``upi`` - model-based Unprocessing (Brooks et al. 2019, :mod:`raw_synth.isp.unprocess`): a
  random camera colour matrix and white balance per image, inverse tone curve and gamma.
* ``ssdnet`` - the learned inverse ISP (SSDNet, :class:`SSDNetEngine`): a trained checkpoint
  (``.safetensors``, kind ``"ssdnet-isp"``) run by :mod:`raw_synth.inference`; the camera's
  white balance and colour matrix come from the checkpoint.

An engine takes sRGB ``(H, W, 3)`` float32 in ``[0, 1]`` with even ``H`` and ``W`` and returns an
:class:`EngineResult`: the packed RAW ``(4, H/2, W/2)`` in RGGB order, normalised to ``[0, 1]``,
and the colour facts a RAW file needs (white-balance gains and XYZ-to-camera matrix).

Example:
    >>> import numpy as np
    >>> engine = create_engine("upi")
    >>> result = engine.convert(np.full((8, 8, 3), 0.5, np.float32), np.random.default_rng(0))
    >>> result.packed.shape
    (4, 4, 4)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

import numpy as np

from raw_synth.bundled_checkpoints import ISP_CHECKPOINT, bundled_checkpoint_path
from raw_synth.errors import RawSynthError
from raw_synth.file_hash import file_sha256

if TYPE_CHECKING:  # pragma: no cover
    from raw_synth.inference import InferenceOptions

__all__ = [
    "engine_uses_torch",
    "EngineResult",
    "InverseISP",
    "UPIEngine",
    "SSDNetEngine",
    "bundled_checkpoint",
    "create_engine",
    "list_engines",
    "check_rgb",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineResult:
    """A clean RAW image made from one sRGB image.

    Attributes:
        packed: float32 ``(4, H/2, W/2)`` in R, Gr, Gb, B order, values in ``[0, 1]``.
        wb_gains: White-balance gains per plane (R, Gr, Gb, B) that the forward ISP applies; the
            camera's as-shot neutral is their reciprocal.
        xyz_to_cam: ``(3, 3)`` XYZ(D65)-to-camera matrix (DNG ColorMatrix1 convention).
        params: Engine-specific parameters, JSON-friendly (e.g. Unprocessing's gains).
        uncertainty: Optional float32 ``(4, H/2, W/2)`` per-pixel error scale of ``packed``
            (SSDNet's variance head, when asked for), else ``None``.
    """

    packed: np.ndarray
    wb_gains: tuple[float, float, float, float]
    xyz_to_cam: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    uncertainty: np.ndarray | None = None

    @property
    def as_shot_neutral(self) -> tuple[float, float, float]:
        """DNG AsShotNeutral (R, G, B): the camera response to a neutral grey, green = 1."""
        red, _, _, blue = self.wb_gains
        return (1.0 / red, 1.0, 1.0 / blue)


@runtime_checkable
class InverseISP(Protocol):
    """What every inverse-ISP engine offers."""

    name: str

    def convert(self, rgb: np.ndarray, rng: np.random.Generator) -> EngineResult:
        """Turn one sRGB image ``(H, W, 3)`` into a clean RAW image."""
        ...


def check_rgb(rgb: np.ndarray, what: str = "image") -> np.ndarray:
    """Validate an sRGB engine input and return it as float32.

    Raises:
        RawSynthError: If it is not ``(H, W, 3)``, has odd sides, or holds non-finite values.
    """
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise RawSynthError(f"{what}: expected an sRGB array of shape (H, W, 3), got {array.shape}")
    if array.shape[0] % 2 or array.shape[1] % 2:
        raise RawSynthError(f"{what}: height and width must be even, got {array.shape[0]}x{array.shape[1]}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise RawSynthError(f"{what}: holds NaN or infinite values")
    return array


class UPIEngine:
    """Brooks et al. Unprocessing as an engine: a random camera for every image."""

    name = "upi"

    def convert(self, rgb: np.ndarray, rng: np.random.Generator) -> EngineResult:
        """Unprocess one sRGB image.

        Args:
            rgb: float ``(H, W, 3)`` in ``[0, 1]``, even ``H`` and ``W``.
            rng: Generator for the random camera (colour matrix and gains).

        Returns:
            The packed RAW and its colour facts; ``params`` holds the Unprocessing parameters.
        """
        from raw_synth.isp.color import xyz_to_cam_from_rgb_to_cam
        from raw_synth.isp.unprocess import unprocess

        packed, params = unprocess(check_rgb(rgb), rng)
        # rgb2cam = rownorm(xyz2cam @ rgb2xyz), so rgb2cam @ xyz2rgb is an XYZ-to-camera matrix with
        # the same camera-white normalisation that DNG readers undo.
        xyz_to_cam = xyz_to_cam_from_rgb_to_cam(params.rgb2cam)
        gains = (float(params.red_gain), 1.0, 1.0, float(params.blue_gain))
        return EngineResult(packed=packed.astype(np.float32, copy=False), wb_gains=gains,
                            xyz_to_cam=xyz_to_cam, params=params.to_dict())


#: Where an install keeps the bundled SSDNet checkpoint (trained on RAW/sRGB pairs of one camera).
BUNDLED_CHECKPOINT = bundled_checkpoint_path(ISP_CHECKPOINT)

#: Colour facts used when a checkpoint records no camera (Unprocessing's typical camera).
DEFAULT_WB_GAINS = (2.0, 1.0, 1.0, 1.7)


def bundled_checkpoint() -> Path | None:
    """The SSDNet checkpoint shipped with this install, or ``None`` when there is none."""
    return BUNDLED_CHECKPOINT if BUNDLED_CHECKPOINT.is_file() else None


def _camera_facts(path: Path, extra: dict[str, Any]) -> tuple[tuple[float, float, float, float], np.ndarray, str]:
    """White-balance gains, XYZ-to-camera matrix and camera name from a checkpoint's ``extra``."""
    camera = extra.get("camera") if isinstance(extra, dict) else None
    if camera is None:
        from raw_synth.camera import get_profile

        logger.warning("%s: checkpoint records no camera (extra['camera']); using white balance %s and the "
                       "generic colour matrix of the 'unprocessing' profile", path, DEFAULT_WB_GAINS)
        return DEFAULT_WB_GAINS, get_profile("unprocessing").xyz_to_cam_matrix, "unknown"
    try:
        if not isinstance(camera, dict):
            raise ValueError("not a mapping")
        gains = np.asarray(camera["wb_gains"], dtype=np.float64)
        matrix = np.asarray(camera["xyz_to_cam"], dtype=np.float64)
        name = str(camera.get("name", "unknown"))
    except (KeyError, TypeError, ValueError) as error:
        raise RawSynthError(f"{path}: checkpoint camera metadata is damaged ({error})") from None
    if gains.shape != (4,) or not np.isfinite(gains).all() or (gains <= 0).any():
        raise RawSynthError(f"{path}: checkpoint camera wb_gains must be 4 positive numbers, "
                            f"got {camera['wb_gains']!r}")
    if matrix.shape != (3, 3) or not np.isfinite(matrix).all():
        raise RawSynthError(f"{path}: checkpoint camera xyz_to_cam must be a finite 3x3 matrix")
    return (float(gains[0]), float(gains[1]), float(gains[2]), float(gains[3])), matrix, name


#: Smallest sRGB value the SSDNet engine passes to the network: one 8-bit code. SSDNet's convolutions
#: have no bias and every block starts with a per-pixel LayerNorm, so the network is nearly blind to
#: the scale of its input: a flat region darker than about 0.002 (a clipped black background) is
#: normalised into the colour of its rounding noise, and the bundled checkpoint turned the
#: astronaut's black background (10 % of the photo at exactly 0) to RAW red 0.19. At 1/255 such
#: regions come out black (RAW 0.0003); the lift is below half an 8-bit step of any photo and
#: changes no other pixel (``docs/model_card_isp.md``).
SRGB_FLOOR: float = 1.0 / 255.0


class SSDNetEngine:
    """The learned inverse ISP: a trained SSDNet checkpoint as an engine.

    The model is loaded once (:func:`raw_synth.checkpoint.load_model`, kind ``"ssdnet-isp"``) and
    run by :func:`raw_synth.inference.run_inference` (tiles, optional self-ensemble and test-time
    resampling). The white balance and colour matrix of every result are the checkpoint's camera
    (``extra["camera"] = {"wb_gains": [4], "xyz_to_cam": [[3x3]], "name": str}``); a checkpoint
    without one gets gains ``(2.0, 1, 1, 1.7)`` and the ``unprocessing`` profile's matrix, with a
    warning. On CPU the glibc allocator is tuned once (:func:`raw_synth.cpu_tuning.tune_cpu_allocator`).

    Every :meth:`convert` draws exactly one integer from its ``rng`` (the seed of the image's
    test-resampling generator), whatever the options, so the draws that follow do not depend on
    them.

    Args:
        checkpoint: ``.safetensors`` checkpoint; ``None`` for the bundled one
            (:func:`bundled_checkpoint`).
        options: Inference settings; default :class:`~raw_synth.inference.InferenceOptions`.
        uncertainty: Also return the variance head's per-pixel error scale
            (:attr:`EngineResult.uncertainty`).

    Raises:
        RawSynthError: No bundled checkpoint, a missing or foreign file, a checkpoint of another
            kind or architecture, damaged camera metadata, an unavailable device, or
            ``uncertainty``/``test_resample`` with a model that has no variance head.
    """

    name = "ssdnet"

    def __init__(self, checkpoint: str | Path | None = None, options: "InferenceOptions | None" = None,
                 *, uncertainty: bool = False) -> None:
        from raw_synth.checkpoint import load_model
        from raw_synth.inference import InferenceOptions, prepare_model

        if checkpoint is None:
            checkpoint = bundled_checkpoint()
            if checkpoint is None:
                raise RawSynthError("no bundled SSDNet checkpoint in this install: "
                                    "pass --model CKPT or use --engine upi")
        if not isinstance(checkpoint, (str, Path)):
            raise RawSynthError(f"checkpoint: expected a file path, got {type(checkpoint).__name__}")
        if options is None:
            options = InferenceOptions()
        if not isinstance(options, InferenceOptions):
            raise RawSynthError(f"options: expected InferenceOptions, got {type(options).__name__}")
        if not isinstance(uncertainty, bool):
            raise RawSynthError(f"uncertainty must be a boolean, got {uncertainty!r}")
        self.checkpoint = Path(checkpoint)
        self.options = options
        self.uncertainty = uncertainty
        model, metadata = load_model(self.checkpoint, kind="ssdnet-isp", device="cpu")
        needs_sigma = uncertainty or options.test_resample > 0
        if needs_sigma and getattr(model, "sigma_head", None) is None:
            what = "uncertainty" if uncertainty else "test_resample"
            raise RawSynthError(f"{self.checkpoint}: {what} needs a variance head, which this model has none of")
        self.metadata = metadata
        self.wb_gains, self.xyz_to_cam, self.camera_name = _camera_facts(self.checkpoint, metadata["extra"])
        self.model, self.device = prepare_model(model, options)
        self._sha256: str | None = None

    @property
    def checkpoint_sha256(self) -> str:
        """Hex sha256 of the checkpoint file (recorded in a store's manifest)."""
        if self._sha256 is None:
            self._sha256 = file_sha256(self.checkpoint)
        return self._sha256

    def _result(self, packed: np.ndarray, sigma: np.ndarray | None, seed: int) -> EngineResult:
        params = {"camera": self.camera_name, "test_resample": self.options.test_resample,
                  "self_ensemble": self.options.self_ensemble, "resample_seed": seed}
        return EngineResult(packed=packed, wb_gains=self.wb_gains, xyz_to_cam=self.xyz_to_cam.copy(),
                            params=params, uncertainty=sigma)

    def _run(self, images: list[np.ndarray], seeds: list[int]) -> list[EngineResult]:
        import torch

        from raw_synth.inference import run_inference

        batch = np.stack(images)  # a new array: lifting near-black to SRGB_FLOOR in place leaves the inputs alone
        np.maximum(batch, SRGB_FLOOR, out=batch)
        rgb = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous().to(self.device)
        generators = None
        if self.options.test_resample:
            generators = [torch.Generator(device=self.device).manual_seed(seed) for seed in seeds]
        out = run_inference(self.model, rgb, self.options, generators, with_sigma=self.uncertainty)
        mu = out["mu"].cpu().numpy()
        sigma = out["sigma"].cpu().numpy() if self.uncertainty else None
        return [self._result(np.ascontiguousarray(mu[i], dtype=np.float32),
                             None if sigma is None else np.ascontiguousarray(sigma[i], dtype=np.float32), seeds[i])
                for i in range(len(images))]

    def convert(self, rgb: np.ndarray, rng: np.random.Generator) -> EngineResult:
        """Turn one sRGB image into a clean RAW with the SSDNet.

        Args:
            rgb: float ``(H, W, 3)`` in ``[0, 1]``, even ``H`` and ``W`` (not modified).
            rng: Source of the test-resampling seed (one integer is drawn).

        Returns:
            ``packed`` float32 ``(4, H/2, W/2)`` in [0, 1] (RGGB order), the checkpoint camera's
            gains and matrix, ``params`` (camera, test_resample, self_ensemble, resample_seed)
            and, when asked for, ``uncertainty`` of the same shape as ``packed``.

        Raises:
            RawSynthError: On a bad image (see :func:`check_rgb`).
        """
        return self.convert_batch([rgb], [rng])[0]

    def convert_batch(self, images: Sequence[np.ndarray], rngs: Sequence[np.random.Generator]) -> list[EngineResult]:
        """Convert several images; same-sized ones are stacked into batches of ``options.batch_size``.

        Result ``i`` equals ``convert(images[i], rngs[i])`` (up to float rounding of batched
        kernels): each image draws one integer from its own generator, in order.

        Args:
            images: sRGB ``(H, W, 3)`` arrays (sizes may differ).
            rngs: One generator per image.

        Returns:
            One :class:`EngineResult` per image, in order.

        Raises:
            RawSynthError: On a bad image (the message gives its position) or mismatched lengths.
        """
        if len(images) != len(rngs):
            raise RawSynthError(f"convert_batch: {len(images)} images but {len(rngs)} generators")
        checked = [check_rgb(image, f"image {i}" if len(images) > 1 else "image") for i, image in enumerate(images)]
        seeds = [int(rng.integers(0, 2**63 - 1)) for rng in rngs]
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(checked):
            groups.setdefault(image.shape, []).append(index)
        results: list[EngineResult | None] = [None] * len(checked)
        size = self.options.batch_size
        for members in groups.values():
            for first in range(0, len(members), size):
                chunk = members[first : first + size]
                for index, result in zip(chunk, self._run([checked[i] for i in chunk], [seeds[i] for i in chunk])):
                    results[index] = result
        return [result for result in results if result is not None]


#: The engines by name, and whether each runs torch (``upi`` is numpy only).
_ENGINES: dict[str, bool] = {"upi": False, "ssdnet": True}


def list_engines() -> list[str]:
    """Names accepted by :func:`create_engine`."""
    return list(_ENGINES)


def engine_uses_torch(name: str) -> bool:
    """Whether engine ``name`` runs torch, answered without creating it or importing torch.

    A pipeline pins torch's thread count only for such engines: setting it imports torch, which a
    ``upi`` run otherwise never loads (its engine and the noise models work on numpy arrays).

    Raises:
        RawSynthError: ``name`` is not an engine.
    """
    if name not in _ENGINES:
        raise _unknown_engine(name)
    return _ENGINES[name]


def _unknown_engine(name: str) -> RawSynthError:
    return RawSynthError(f"unknown engine {name!r}: expected one of {', '.join(_ENGINES)}")


def create_engine(name: str, **options: Any) -> InverseISP:
    """Build an inverse-ISP engine by name.

    Args:
        name: ``"upi"`` or ``"ssdnet"``.
        **options: Engine options. ``upi`` takes none. ``ssdnet`` takes ``checkpoint`` (path, or
            ``None`` for the bundled checkpoint), ``device`` (``"auto"`` by default),
            ``uncertainty`` (bool) and any other :class:`~raw_synth.inference.InferenceOptions`
            field (``amp``, ``channels_last``, ``tile``, ``overlap``, ``test_resample``,
            ``self_ensemble``, ``batch_size``).

    Raises:
        RawSynthError: For an unknown name, unknown or invalid options, or an engine that is not
            available (e.g. no checkpoint).
    """
    if name == "upi":
        if options:
            raise RawSynthError(f"engine 'upi' takes no options, got {', '.join(sorted(options))}")
        return UPIEngine()
    if name == "ssdnet":
        from raw_synth.inference import InferenceOptions

        known = {"checkpoint", "uncertainty", *InferenceOptions.field_names()}
        unknown = sorted(set(options) - known)
        if unknown:
            raise RawSynthError(f"engine 'ssdnet': unknown option(s) {', '.join(unknown)}; known: "
                                f"{', '.join(sorted(known))}")
        checkpoint = options.pop("checkpoint", None)
        uncertainty = options.pop("uncertainty", False)
        return SSDNetEngine(checkpoint, InferenceOptions(**options), uncertainty=uncertainty)
    raise _unknown_engine(name)
