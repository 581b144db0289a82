"""Latent diffusion maths: the cosine schedule, the sampler's strided DDPM/DDIM coefficients against data whose
optimal noise predictor is known in closed form, and CbLDM's accelerated start."""
import math

import pytest
import torch

from pdfsolve.models.diffusion import (T_STEPS, accelerated_start, cosine_alpha_bar, noised, sample,
                                       step_sequence)

ABAR = cosine_alpha_bar()


def gaussian_eps(mean: float, std: float):
    """The exact E[eps | x_t] for data x_0 ~ N(mean, std^2) per coordinate: with a = abar_t,
    x_t ~ N(sqrt(a) mean, a std^2 + 1 - a) and E[eps | x_t] = sqrt(1 - a) (x_t - sqrt(a) mean) / (a std^2 + 1 - a)."""
    def eps(x, t):
        a = ABAR[t].to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return (1 - a).sqrt() * (x - a.sqrt() * mean) / (a * std**2 + 1 - a)
    return eps


def test_cosine_schedule_matches_its_closed_form():
    f = lambda t: math.cos((t / T_STEPS + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert ABAR.shape == (T_STEPS + 1,) and ABAR[0] == 1.0
    for t in (1, 10, 500, 900):
        assert float(ABAR[t]) == pytest.approx(f(t) / f(0), rel=1e-12)
    assert bool((ABAR[1:] < ABAR[:-1]).all()) and 0 < float(ABAR[-1]) < 1e-6
    beta = 1 - ABAR[1:] / ABAR[:-1]
    assert float(beta.max()) == pytest.approx(0.999)  # the clip bites at the last step
    with pytest.raises(ValueError, match="at least one"):
        cosine_alpha_bar(0)


def test_noising_and_step_sequences():
    x0, noise = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    t = torch.tensor([0, 10, 1000])
    out = noised(x0, t, noise, ABAR)
    torch.testing.assert_close(out[0], x0[0])
    torch.testing.assert_close(out[1], ABAR[10].sqrt() * x0[1] + (1 - ABAR[10]).sqrt() * noise[1])
    assert step_sequence(1) == [1000, 0] and step_sequence(4) == [1000, 667, 334, 1, 0]
    assert step_sequence(1000) == [*range(1000, 0, -1), 0]
    with pytest.raises(ValueError, match="1 <= steps"):
        step_sequence(0)


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("n_steps", [1, 3, 20])
def test_a_point_mass_is_recovered_exactly_at_any_stride(eta, n_steps):
    """Data at one point c: the exact predictor makes x0_hat = c at every step, so every sampler ends at c."""
    c = 0.7
    x = torch.randn(64, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = sample(gaussian_eps(c, 0.0), x, step_sequence(n_steps), ABAR, eta=eta)
    torch.testing.assert_close(out, torch.full_like(out, c), rtol=0, atol=1e-9)


def published_ddpm_step_noise(x, eps_model, gen):
    """The published sampler's single-step loop with beta_t (not sqrt(beta_t)) as the noise's scale."""
    for t in range(T_STEPS, 0, -1):
        a_t, a_s = ABAR[t], ABAR[t - 1]
        beta = 1 - a_t / a_s
        eps = eps_model(x, torch.full((len(x),), t))
        x = (x - beta / (1 - a_t).sqrt() * eps) / (1 - beta).sqrt()
        if t > 1:
            x = x + beta * torch.randn(x.shape, dtype=x.dtype, generator=gen)
    return x


def test_ddpm_reproduces_the_data_distribution():
    """Gaussian data N(0.5, 0.3^2) with the exact predictor: DDPM (eta 1, 1000 steps) must give that mean and
    standard deviation, where the published noise term beta_t (for sqrt(beta_t)) falls far short."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(20000, dtype=torch.float64, generator=gen)
    out = sample(gaussian_eps(0.5, 0.3), x, step_sequence(1000), ABAR, eta=1.0, generator=gen)
    assert float(out.mean()) == pytest.approx(0.5, abs=0.01)
    assert float(out.std()) == pytest.approx(0.3, rel=0.03)
    assert float(published_ddpm_step_noise(x, gaussian_eps(0.5, 0.3), gen).std()) < 0.2
    strided = sample(gaussian_eps(0.5, 0.3), x, step_sequence(50), ABAR, eta=1.0, generator=gen)
    assert float(strided.std()) == pytest.approx(0.3, rel=0.12)  # 50 strided steps: x0_hat's spread is lost


def test_accelerated_start_is_consistent_with_the_forward_process():
    gen = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(5, 8, dtype=torch.float64, generator=gen), torch.randn(5, 8, dtype=torch.float64, generator=gen)
    t1, t2 = 300, 800
    x_t2 = noised(x0, torch.full((5,), t2), eps, ABAR)
    torch.testing.assert_close(accelerated_start(x0, x_t2, t1, t2, ABAR), noised(x0, torch.full((5,), t1), eps, ABAR))
    with pytest.raises(ValueError, match="t2 must be > 0"):
        accelerated_start(x0, x_t2, 0, 0, ABAR)


def test_sampler_refuses_steps_that_do_not_decrease_to_zero():
    with pytest.raises(ValueError, match="decrease to 0"):
        sample(gaussian_eps(0.0, 1.0), torch.zeros(2), [10, 10, 0], ABAR)
    with pytest.raises(ValueError, match="decrease to 0"):
        sample(gaussian_eps(0.0, 1.0), torch.zeros(2), [10, 5], ABAR)
