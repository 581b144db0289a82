"""Fingerprint inversion (pooled ACSF -> coordinates): the compiled objective against autograd and finite
differences, round trips on clusters of every motif, noise, invalid fingerprints, padding, B = 1, bad input."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import pdfsolve.ops as ops
from _clusters import padded
from pdfsolve.geometry import ACSFParameters, pooled_acsf
from pdfsolve.metrics import aligned_deviations
from pdfsolve.reconstruct import FingerprintObjective, fingerprint_weights, invert_fingerprint
from pdfsolve.structures import cubic_cut, decahedron, hcp_cut, icosahedron, octahedron

needs_ext = pytest.mark.skipif(not ops.extension_available(), reason="pdfsolve._C not built")

#: Small clusters of the seven motifs (4-13 atoms) whose exact fingerprints invert with the default settings.
MOTIF_CLUSTERS = {
    "icosahedral 13": icosahedron(2, "Au"),
    "decahedral 13": decahedron(2, 2, 0, "Pt"),
    "decahedral 7": decahedron(2, 1, 0, "Cu"),
    "octahedral 13 (cuboctahedron)": octahedron(3, 1, "Au"),
    "octahedral 6": octahedron(2, 0, "Pd"),
    "fcc 4": cubic_cut("fcc", (1, 1, 1), "tetrahedral", "Ag"),
    "bcc 8": cubic_cut("bcc", (2, 2, 3), "tetrahedral", "Fe"),
    "sc 8 (cube)": cubic_cut("sc", (1, 1, 2), "cubic", "Mn"),
    "hcp 13": hcp_cut((1, 2, 2), "Co"),
}


def max_errors(res, pos, mask):
    """Largest atom error (B,) in Angstrom after the best translation, rotation, reflection and permutation."""
    return np.array([aligned_deviations(res.x[k][mask[k]], pos[k][mask[k]]).max() for k in range(len(pos))])


def objective(bounds, pooling=("max", "min"), n_species=2, seed=0):
    """A random objective over 3 clusters of 7 slots (two species, padding in one) and points near a target."""
    g = torch.Generator().manual_seed(seed)
    species = torch.randint(0, n_species, (3, 7), generator=g)
    species[1, 5:] = -1
    target_pos = 1.5 * torch.randn(3, 7, 3, generator=g, dtype=torch.float64)
    params = ACSFParameters.published()
    target = pooled_acsf(target_pos, species.clamp(min=0), params, n_species, species >= 0, pooling)
    obj = FingerprintObjective(target, fingerprint_weights(target), species, n_species, params, pooling, 2.2, 3.0,
                               bounds)
    x = target_pos + 0.4 * torch.randn(3, 7, 3, generator=g, dtype=torch.float64)
    return obj, x


@needs_ext
@pytest.mark.parametrize("bounds", [False, True])
@pytest.mark.parametrize("pooling", [("max", "min"), ("mean",), ("min", "mean", "max")])
def test_compiled_objective_matches_autograd(bounds, pooling):
    obj, x = objective(bounds, pooling)
    f, g = obj.value_and_grad(x, "compiled")
    f_ref, g_ref = obj.value_and_grad(x, "torch")
    assert (f > 0).all()
    assert torch.allclose(f, f_ref, rtol=1e-12, atol=0)
    assert (g - g_ref).abs().max() <= 1e-12 * g_ref.abs().max()
    assert (g[1, 5:] == 0).all()  # padding gets no gradient


@needs_ext
def test_compiled_gradient_matches_finite_differences():
    obj, x = objective(True, n_species=1)
    obj, x = obj.rows(torch.tensor([0])), x[:1]
    _, g = obj.value_and_grad(x, "compiled")
    h = 1e-6
    for i, d in [(0, 0), (3, 1), (6, 2)]:
        e = torch.zeros_like(x)
        e[0, i, d] = h
        fd = (obj.value_and_grad(x + e, "compiled")[0] - obj.value_and_grad(x - e, "compiled")[0]) / (2 * h)
        assert abs(fd.item() - g[0, i, d].item()) <= 1e-6 * g.abs().max().item()


@needs_ext
def test_penalty_pushes_overlapping_atoms_apart():
    obj, x = objective(False, n_species=1)
    x = x[:1].clone()
    x[0, 1] = x[0, 0] + torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)  # 0.5 A apart, min_distance 2.2 A
    with_penalty = obj.rows(torch.tensor([0]))
    f, g = with_penalty.value_and_grad(x, "compiled")
    f0, g0 = replace(with_penalty, penalty=0.0).value_and_grad(x, "compiled")
    d = torch.pdist(x[0])  # every pair of the 7 real atoms
    assert torch.allclose(f - f0, 3.0 * (torch.relu(2.2 - d) ** 2).sum(), rtol=1e-12)
    assert (d < 2.2).sum() >= 1 and f - f0 >= 3.0 * 1.7**2
    assert (g - g0)[0, 0, 0] > (g - g0)[0, 1, 0]  # descent moves the two atoms apart along x


@needs_ext
def test_round_trip_clusters_of_every_motif():
    clusters = list(MOTIF_CLUSTERS.values())
    pos, mask = padded(clusters, rotate_seed=0)
    target = pooled_acsf(pos, mask=mask)
    res = invert_fingerprint(target, mask.sum(1), seed=0)
    err = max_errors(res, pos, mask)
    assert (err <= 1e-3).all(), dict(zip(MOTIF_CLUSTERS, err))
    assert (res.loss < 1e-12).all()
    assert (res.x[~mask] == 0).all()
    # the result is centred and its fingerprint is the target's
    assert torch.allclose((res.x * mask[..., None]).sum(1), torch.zeros(len(clusters), 3, dtype=torch.float64),
                          atol=1e-9)
    back = pooled_acsf(res.x, mask=mask)
    assert ((back - target).abs() / (target.abs() + 0.1 * target.abs().amax(1, keepdim=True))).max() < 1e-5


@needs_ext
def test_noise_degrades_smoothly():
    pos, mask = padded([MOTIF_CLUSTERS["icosahedral 13"], MOTIF_CLUSTERS["octahedral 13 (cuboctahedron)"]], 0)
    target = pooled_acsf(pos, mask=mask)
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    errors, losses = [], []
    for level in (0.0, 1e-3, 1e-2, 3e-2):
        res = invert_fingerprint(target * (1 + level * noise), 13, seed=0)
        errors.append(max_errors(res, pos, mask).max())
        losses.append(res.loss.max().item())
    assert errors[0] <= 1e-3
    assert all(a < b for a, b in zip(errors, errors[1:])), errors
    assert all(a < b for a, b in zip(losses, losses[1:])), losses
    assert errors[-1] < 0.5, errors  # 3 % noise on every entry: still the same cluster, within half an Angstrom


@needs_ext
def test_invalid_fingerprint_gives_a_high_loss():
    pos, mask = padded([MOTIF_CLUSTERS["icosahedral 13"]], 0)
    target = pooled_acsf(pos, mask=mask)
    F = target.shape[1] // 2
    swapped = torch.cat([target[:, F:], target[:, :F]], 1)  # maxima below minima: no cluster has that
    inflated = target * torch.where(torch.arange(2 * F) < 140, 3.0, 1.0)  # three times the neighbours per shell
    res = invert_fingerprint(torch.cat([target, swapped, inflated]), 13, seed=0, n_hops=1)
    assert res.loss[0] < 1e-12
    assert (res.loss[1:] > 1e-3).all(), res.loss


@needs_ext
def test_unbatched_target_and_batch_of_one():
    c = MOTIF_CLUSTERS["octahedral 6"]
    target = pooled_acsf(torch.tensor(c.positions))
    res = invert_fingerprint(target, len(c), seed=3)
    assert res.x.shape == (6, 3) and res.loss.dim() == 0 and res.mask.shape == (6,)
    assert aligned_deviations(res.x, c.positions).max() <= 1e-3
    res1 = invert_fingerprint(target[None], [6], seed=3)
    assert res1.x.shape == (1, 6, 3) and torch.equal(res1.x[0], res.x)


@needs_ext
def test_padding_is_fixed_and_ignored():
    pos, mask = padded([MOTIF_CLUSTERS["fcc 4"], MOTIF_CLUSTERS["octahedral 6"]], 0)
    target = pooled_acsf(pos, mask=mask)
    res = invert_fingerprint(target, [4, 6], seed=0)
    assert (max_errors(res, pos, mask) <= 1e-3).all()
    # the op leaves padding slots where they start and keeps them out of the features and the penalty
    obj = FingerprintObjective(target, fingerprint_weights(target), torch.where(mask, 0, -1), 1,
                               ACSFParameters.published(), ("max", "min"), 2.0, 1.0, True)
    x0 = pos + 0.1
    x, f, _, _ = torch.ops.pdfsolve.invert_fingerprint(x0, *obj._op_args(), 10, 1e-10, 1e-6, 50)
    assert torch.equal(x[~mask], x0[~mask])
    moved = x0.clone()
    moved[0, 4:] = x0[0, 0]  # padding on top of a real atom changes nothing
    assert torch.equal(obj.value_and_grad(moved, "compiled")[0], obj.value_and_grad(x0, "compiled")[0])


@needs_ext
def test_torch_reference_backend_solves_too():
    c = MOTIF_CLUSTERS["octahedral 6"]
    target = pooled_acsf(torch.tensor(c.positions))
    res = invert_fingerprint(target, 6, seed=1, n_starts=4, backend="torch")
    assert aligned_deviations(res.x, c.positions).max() <= 1e-3 and res.loss < 1e-12


def test_starts_fill_a_ball_and_species_select_the_features():
    pos, mask = padded([MOTIF_CLUSTERS["fcc 4"], MOTIF_CLUSTERS["hcp 13"]], 0)
    species = torch.tensor([[0, 1, 0, 1] + [0] * 9, [0, 1] * 6 + [0]])
    target = pooled_acsf(pos, species, mask=mask, n_species=2)
    assert target.shape == (2, 2 * ACSFParameters.published().n_features(2))
    with pytest.raises(ValueError, match="target must have 380 entries"):
        invert_fingerprint(target, [4, 13])  # one species assumed
    if ops.extension_available():
        res = invert_fingerprint(target, [4, 13], species=species, n_hops=0, n_starts=2)
        assert res.x.shape == (2, 13, 3)


def test_aligned_deviations_undo_rotation_reflection_translation_and_permutation():
    x = MOTIF_CLUSTERS["icosahedral 13"].positions
    rng = np.random.default_rng(0)
    y = (Rotation.random(random_state=2).apply(x) * np.array([1, -1, 1]))[rng.permutation(13)] + 5.0
    assert aligned_deviations(y, x).max() < 1e-12
    y[3, 0] += 0.1  # one atom 0.1 A off: the best superposition spreads it a little
    assert 0.05 < aligned_deviations(y, x).max() < 0.1


def test_bad_input_is_named():
    target = pooled_acsf(torch.tensor(MOTIF_CLUSTERS["octahedral 6"].positions))
    with pytest.raises(ValueError, match="target must have 380 entries"):
        invert_fingerprint(target[:100], 6)
    with pytest.raises(ValueError, match="target contains NaN"):
        invert_fingerprint(torch.full_like(target, float("nan")), 6)
    with pytest.raises(ValueError, match="n_atoms must be >= 1"):
        invert_fingerprint(target, 0)
    with pytest.raises(ValueError, match="n_atoms must be an int or have shape"):
        invert_fingerprint(target, [6, 6])
    with pytest.raises(ValueError, match="pooling must be among"):
        invert_fingerprint(target, 6, pooling=("max", "median"))
    with pytest.raises(ValueError, match="weights must be finite"):
        invert_fingerprint(target, 6, weights=-torch.ones(380))
    with pytest.raises(ValueError, match="starts must have shape"):
        invert_fingerprint(target, 6, starts=torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="n_starts must be >= 1"):
        invert_fingerprint(target, 6, n_starts=0)


@needs_ext
def test_op_checks_name_the_argument():
    obj, x = objective(True)
    args = list(obj._op_args())
    with pytest.raises(RuntimeError, match="pooling codes must be 0"):
        torch.ops.pdfsolve.fingerprint_loss(x, *args[:7], [0, 5], *args[8:])
    bad = list(args)
    bad[3] = args[3][:, :10]
    with pytest.raises(RuntimeError, match="weight must have shape"):
        torch.ops.pdfsolve.fingerprint_loss(x, *bad)
    bad = list(args)
    bad[8] = -1.0
    with pytest.raises(RuntimeError, match="min_distance must be finite and >= 0"):
        torch.ops.pdfsolve.fingerprint_loss(x, *bad)
    with pytest.raises(RuntimeError, match="m must be >= 1"):
        torch.ops.pdfsolve.invert_fingerprint(x, *args, 0, 1e-10, 1e-6, 10)


@needs_ext
def test_opcheck():
    obj, x = objective(True)
    torch.library.opcheck(torch.ops.pdfsolve.fingerprint_loss.default, (x, *obj._op_args()))
    torch.library.opcheck(torch.ops.pdfsolve.invert_fingerprint.default, (x, *obj._op_args(), 10, 1e-10, 1e-6, 5))
