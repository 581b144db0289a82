"""Denoising diffusion (DDPM, Ho et al. 2020) in a latent space: the cosine schedule, forward noising, one batched
sampler for DDPM and DDIM over any decreasing subsequence of steps, and CbLDM's accelerated start.

Notation: steps t = 0..T with abar_0 = 1; x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps. A model predicts eps from
(x_t, t). One sampler step from t to an earlier s (s = 0 at the end) is the DDIM update (Song et al. 2021)

    x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)
    sigma  = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s)
    x_s    = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z,

with eta = 1 the DDPM posterior q(x_s | x_t, x0_hat) for any stride (its standard deviation is sigma, the square
root of the strided beta tilde; the published CbLDM sampler used single-step coefficients for strided steps, a
beta_t where sqrt(beta_t) belongs, and never reached t = 0) and eta = 0 the deterministic DDIM sampler.
"""
from __future__ import annotations

import math

import torch

#: Steps of the forward process (CbLDM's).
T_STEPS = 1000


def cosine_alpha_bar(steps: int = T_STEPS, offset: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """(steps + 1,) float64 abar_t of the cosine schedule (Nichol & Dhariwal 2021): abar_t = f(t) / f(0),
    f(t) = cos^2(pi/2 (t/T + offset) / (1 + offset)), with each beta_t = 1 - abar_t / abar_{t-1} clipped to
    ``max_beta``."""
    if steps < 1:
        raise ValueError(f"need at least one diffusion step, got {steps}")
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
    beta = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - beta, 0)])


def noised(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise for a batch x0 (B, ...) at steps t (B,)."""
    a = alpha_bar.to(x0.device)[t].to(x0.dtype).reshape(-1, *([1] * (x0.dim() - 1)))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def step_sequence(n_steps: int, start: int = T_STEPS) -> list[int]:
    """``n_steps`` evenly spaced steps from ``start`` down to 1, then 0: [start, ..., 1, 0] (n_steps + 1 entries)."""
    if not 1 <= n_steps <= start:
        raise ValueError(f"need 1 <= steps <= {start}, got {n_steps}")
    ts = torch.linspace(start, 1, n_steps).round().long().tolist()
    return [*ts, 0]


@torch.no_grad()
def sample(eps_model, x: torch.Tensor, steps: list[int], alpha_bar: torch.Tensor, eta: float = 1.0,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Run the sampler from x = x_{steps[0]} (B, ...) through the decreasing ``steps`` (ending at 0) and return x_0.

    ``eps_model(x_t, t)`` takes t as (B,) int64 and predicts the noise; ``eta`` 1 is DDPM, 0 is DDIM.
    """
    if any(b >= a for a, b in zip(steps, steps[1:])) or steps[-1] != 0:
        raise ValueError(f"steps must decrease to 0, got {steps[:3]}...{steps[-3:]}")
    abar = alpha_bar.to(device=x.device, dtype=torch.float64)
    for t, s in zip(steps, steps[1:]):
        a_t, a_s = abar[t], abar[s]
        eps = eps_model(x, torch.full((len(x),), t, dtype=torch.long, device=x.device))
        x0 = (x - (1 - a_t).sqrt().to(x.dtype) * eps) / a_t.sqrt().to(x.dtype)
        sigma = eta * ((1 - a_s) / (1 - a_t) * (1 - a_t / a_s)).clamp(min=0).sqrt()
        x = (a_s.sqrt().to(x.dtype) * x0 + (1 - a_s - sigma**2).clamp(min=0).sqrt().to(x.dtype) * eps)
        if s > 0 and sigma > 0:
            x = x + sigma.to(x.dtype) * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x


def accelerated_start(x0_prior: torch.Tensor, x_t2: torch.Tensor, t1: int, t2: int,
                      alpha_bar: torch.Tensor) -> torch.Tensor:
    """CbLDM's start at step t1 from a latent of the conditional prior x0* and a sample x_t2 at step t2:

        x_t1 = (sqrt(abar_1) - sqrt(abar_2) sqrt(1 - abar_1) / sqrt(1 - abar_2)) x0* + sqrt(1 - abar_1)
               / sqrt(1 - abar_2) x_t2,

    i.e. x_t1 = sqrt(abar_1) x0* + sqrt(1 - abar_1) eps with eps = (x_t2 - sqrt(abar_2) x0*) / sqrt(1 - abar_2), the
    noise direction x_t2 implies. Needs 0 < t2 <= T (abar_2 < 1)."""
    abar = alpha_bar.to(torch.float64)
    a1, a2 = abar[t1], abar[t2]
    if not a2 < 1:
        raise ValueError(f"t2 must be > 0, got {t2}")
    ratio = ((1 - a1) / (1 - a2)).sqrt()
    return ((a1.sqrt() - a2.sqrt() * ratio).to(x0_prior.dtype) * x0_prior + ratio.to(x0_prior.dtype) * x_t2)
