"""One entry point for every noise model: :func:`apply_noise` and the :class:`AddNoise` module.

Each model is a frozen parameter dataclass plus an ``apply(x, params, rng)`` function in its own
module (:mod:`.gaussian`, :mod:`.poisson_gaussian`, :mod:`.physics`). :func:`apply_noise`
dispatches on the type of the parameters; :class:`AddNoise` wraps it as a ``torch.nn.Module``.
Importing this module does not import torch: :class:`AddNoise` is defined on first access
(:func:`raw_synth.lazy_torch.lazy_attribute`), so numpy callers of :func:`apply_noise` never
load torch.

Example:
    >>> import torch
    >>> from raw_synth.noise import GaussianParams
    >>> layer = AddNoise(GaussianParams(shot=0.01, read=1e-4))
    >>> noisy, shot, read = layer(torch.zeros(2, 4, 8, 8), generator=torch.Generator().manual_seed(0))
    >>> tuple(noisy.shape), tuple(shot.shape)
    ((2, 4, 8, 8), (2, 4))
"""

from __future__ import annotations

from typing import Any, Union

from raw_synth.errors import RawSynthError
from raw_synth.lazy_torch import lazy_attribute
from raw_synth.noise import gaussian, physics, poisson_gaussian
from raw_synth.noise._base import Array, NoiseResult, RandomSource
from raw_synth.noise.gaussian import GaussianParams
from raw_synth.noise.physics import PhysicsParams
from raw_synth.noise.poisson_gaussian import PoissonGaussianParams

__all__ = ["NoiseParams", "apply_noise", "AddNoise"]  # noqa: F822 (AddNoise: see __getattr__)

NoiseParams = Union[GaussianParams, PoissonGaussianParams, PhysicsParams]
"""Parameters of any of the noise models."""

_APPLY = {
    GaussianParams: gaussian.apply,
    PoissonGaussianParams: poisson_gaussian.apply,
    PhysicsParams: physics.apply,
}


def apply_noise(x: Array, params: NoiseParams, rng: RandomSource = None) -> NoiseResult:
    """Add noise with the model that ``params`` belongs to.

    Args:
        x: clean packed RAW, normalised; numpy float ``(4, h, w)`` or torch float ``(B, 4, h, w)``.
            Not modified.
        params: :class:`GaussianParams`, :class:`PoissonGaussianParams` or :class:`PhysicsParams`.
        rng: numpy ``Generator`` (numpy input), torch ``Generator`` (torch input), an integer seed,
            or ``None`` for fresh entropy.

    Returns:
        ``NoiseResult(noisy, shot, read)``, see the model's ``apply``.

    Raises:
        RawSynthError: on unknown parameters or bad input.
    """
    fn = _APPLY.get(type(params))
    if fn is None:
        raise RawSynthError(
            f"params: expected GaussianParams, PoissonGaussianParams or PhysicsParams, got {type(params).__name__}"
        )
    return fn(x, params, rng)


def _define_add_noise() -> type:
    """Define :class:`AddNoise`, on first access (it subclasses ``torch.nn.Module``: this imports torch)."""
    import torch
    from torch import nn

    class AddNoise(nn.Module):
        """``nn.Module`` that adds noise with fixed parameters to a torch ``(B, 4, h, w)`` batch.

        Args:
            params: parameters of one of the noise models (per-plane values may be ``(B, 4)``).

        ``forward(x, generator=None)`` returns ``NoiseResult(noisy, shot, read)`` with ``noisy``
        ``(B, 4, h, w)`` float32 and ``shot``/``read`` ``(B, 4)``. The module has no weights.
        """

        def __init__(self, params: NoiseParams) -> None:
            super().__init__()
            if type(params) not in _APPLY:
                raise RawSynthError(
                    "params: expected GaussianParams, PoissonGaussianParams or PhysicsParams, "
                    f"got {type(params).__name__}"
                )
            self.params = params

        def forward(self, x: torch.Tensor, generator: Union[torch.Generator, int, None] = None) -> NoiseResult:
            if not isinstance(x, torch.Tensor):
                raise RawSynthError(f"x: AddNoise takes a torch tensor, got {type(x).__name__}")
            return apply_noise(x, self.params, generator)

        def extra_repr(self) -> str:
            return repr(self.params)

    return AddNoise


def __getattr__(name: str) -> Any:
    """``AddNoise`` on first access (see :func:`raw_synth.lazy_torch.lazy_attribute`)."""
    return lazy_attribute(__name__, name, {"AddNoise": _define_add_noise})
