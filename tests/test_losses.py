"""Tests of raw_synth.models.losses: plain L1 and the soft-supervision resampling loss (Eq. 4)."""

from __future__ import annotations

import pytest
import torch

from raw_synth.errors import RawSynthError
from raw_synth.models.losses import DEFAULT_ALPHA, L1Loss, ResamplingLoss, l1_loss, resampling_loss


def test_l1_loss_value() -> None:
    mu = torch.tensor([[0.5, 0.2], [0.0, 1.0]])
    gt = torch.tensor([[0.3, 0.2], [0.1, 0.5]])
    assert float(l1_loss(mu, gt)) == pytest.approx((0.2 + 0.0 + 0.1 + 0.5) / 4)
    assert float(L1Loss()(mu, gt)) == pytest.approx(0.2)


def test_resampling_loss_follows_eq4_exactly() -> None:
    mu = torch.tensor([[[[0.50, 0.20], [0.90, 0.10]]]])
    gt = torch.tensor([[[[0.30, 0.20], [0.60, 0.40]]]])
    sigma = torch.tensor([[[[0.10, 0.05], [0.30, 0.00]]]])
    z = torch.randn(mu.shape, generator=torch.Generator().manual_seed(1234)).flatten().tolist()
    mus, gts, sigmas = mu.flatten().tolist(), gt.flatten().tolist(), sigma.flatten().tolist()
    main = aux = 0.0
    for m, g, s, zi in zip(mus, gts, sigmas, z):
        e = abs(m - g)
        main += abs(m - (g + zi * e))
        aux += abs(s - e)
    expected = main / 4 + 1e-3 * aux / 4
    got = resampling_loss(mu, sigma, gt, alpha=1e-3, generator=torch.Generator().manual_seed(1234))
    assert float(got) == pytest.approx(expected, rel=1e-6)
    module = ResamplingLoss()(mu, sigma, gt, generator=torch.Generator().manual_seed(1234))
    assert float(module) == pytest.approx(expected, rel=1e-6)
    assert DEFAULT_ALPHA == 1e-3


def test_resampling_loss_without_error_is_alpha_times_sigma() -> None:
    gt = torch.rand(2, 4, 3, 3)
    sigma = torch.rand(2, 4, 3, 3)
    # mu == gt: e_gt = 0 and x_rp = gt for every z, so only the sigma term remains
    got = resampling_loss(gt.clone(), sigma, gt, alpha=0.5)
    assert float(got) == pytest.approx(0.5 * float(sigma.mean()), rel=1e-6)


def test_resampling_gradients_and_detach_choice() -> None:
    gen_seed = 3
    gt = torch.tensor([0.2, 0.5, 0.7, 0.1])
    sigma = torch.tensor([0.0, 0.1, 0.2, 0.3], requires_grad=True)
    z = torch.randn(4, generator=torch.Generator().manual_seed(gen_seed))
    for detach in (True, False):
        mu = torch.tensor([0.4, 0.3, 0.7, 0.6], requires_grad=True)
        loss = resampling_loss(mu, sigma, gt, alpha=0.1, generator=torch.Generator().manual_seed(gen_seed),
                               detach_error=detach)
        loss.backward()
        d = (mu - gt).detach()
        residual = d - z * d.abs()
        if detach:
            expected = torch.sign(residual) / 4  # x_rp is a constant target
        else:
            expected = torch.sign(residual) * (1 - z * torch.sign(d)) / 4  # gradient through e_gt too
        torch.testing.assert_close(mu.grad, expected)
    # the sigma term regresses sigma onto e_gt = |mu - gt|
    e = torch.tensor([0.2, 0.2, 0.0, 0.5])
    torch.testing.assert_close(sigma.grad, 2 * 0.1 * torch.sign(sigma.detach() - e) / 4)


def test_resampling_loss_reproducible_and_random() -> None:
    mu, sigma, gt = torch.rand(1, 4, 8, 8), torch.rand(1, 4, 8, 8), torch.rand(1, 4, 8, 8)
    a = resampling_loss(mu, sigma, gt, generator=torch.Generator().manual_seed(0))
    b = resampling_loss(mu, sigma, gt, generator=torch.Generator().manual_seed(0))
    c = resampling_loss(mu, sigma, gt, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_loss_errors() -> None:
    x = torch.rand(1, 4, 2, 2)
    with pytest.raises(RawSynthError, match="sigma: the resampling loss needs the variance head's output"):
        resampling_loss(x, None, x)  # type: ignore[arg-type]
    with pytest.raises(RawSynthError, match=r"gt: shape \(1, 4, 2, 3\) does not match mu shape \(1, 4, 2, 2\)"):
        resampling_loss(x, x, torch.rand(1, 4, 2, 3))
    with pytest.raises(RawSynthError, match=r"sigma: shape \(1, 4\) does not match"):
        resampling_loss(x, torch.rand(1, 4), x)
    with pytest.raises(RawSynthError, match="alpha must be a non-negative number, got -1"):
        resampling_loss(x, x, x, alpha=-1)
    with pytest.raises(RawSynthError, match="alpha must be a non-negative number"):
        ResamplingLoss(alpha=float("nan"))
    with pytest.raises(RawSynthError, match="mu: expected a float tensor"):
        l1_loss(torch.zeros(2, dtype=torch.int64), torch.zeros(2))
