"""Distance-route CVAE and DAE (Anker, Kjaer et al. 2020): the unit-sphere view, loss terms against float64 numpy
references, the KL in closed form, gradients, the DAE's determinism, training through ``pdfsolve train``."""
import json

import numpy as np
import pytest
import torch
from conftest import run_cli

from pdfsolve import simulate_pdf
from pdfsolve.models import DistanceCVAE, DistanceDAE, DistanceParams, build_model
from pdfsolve.models.distance_cvae import pair_distribution
from pdfsolve.models.unit_sphere import ordered_unit_sphere, satellites, symmetric_pairs, upper_pairs
from pdfsolve.models.weights import load_model
from pdfsolve.structures import motifs
from pdfsolve.training import Batch
from _models import au_dataset, one_thread  # noqa: F401 (one_thread: autouse fixture)

#: A small model for fast tests.
TINY = dict(n_max=20, latent_dim=2, satellites=5, pdf_rmin=1.0, pdf_rmax=12.0, pdf_rstep=0.1, channels=3,
            encoder_hidden=(24, 16), decoder_hidden=(16, 32), prior_lengths=(12, 6))


def clusters():
    """An fcc cut of 19, an icosahedron of 13 and an octahedron of 19 Pd atoms, each with one atom nearest its
    centroid (the origin of the unit-sphere view), centred [Angstrom]."""
    return [motifs.cubic_cut("fcc", (2, 2, 2), element="Pd"), motifs.icosahedron(2, element="Pd"),
            motifs.octahedron(3, 0, element="Pd")]


def make_batch(atoms_list, shuffle_seed=None) -> Batch:
    """A float64 batch with fast-mode PDFs; with ``shuffle_seed`` every cluster's atoms are permuted and spread
    over the slots of a wider padding."""
    rng = np.random.default_rng(shuffle_seed)
    width = max(len(a) for a in atoms_list) + (3 if shuffle_seed is not None else 0)
    pos = torch.zeros(len(atoms_list), width, 3, dtype=torch.float64)
    mask = torch.zeros(len(atoms_list), width, dtype=torch.bool)
    for b, a in enumerate(atoms_list):
        xyz = a.positions - a.positions.mean(0)
        slots = np.arange(len(a))
        if shuffle_seed is not None:
            xyz = xyz[rng.permutation(len(a))]
            slots = np.sort(rng.choice(width, size=len(a), replace=False))
        pos[b, slots] = torch.as_tensor(xyz)
        mask[b, slots] = True
    res = simulate_pdf(atoms_list, mode="fast")
    return Batch(pos, mask, mask.sum(1), torch.as_tensor(res.r), res.G.double(), torch.arange(len(atoms_list)))


def reference_view(xyz: np.ndarray, points: np.ndarray):
    """Float64 numpy reference of the unit-sphere view of one cluster (N, 3): ordered unit coordinates, pair and
    satellite distances, radius [Angstrom]."""
    origin = xyz[np.argmin(np.linalg.norm(xyz - xyz.mean(0), axis=1))]
    radius = np.linalg.norm(xyz - origin, axis=1).max()
    x = (xyz - origin) / radius
    sat = np.linalg.norm(x[:, None] - points[None], axis=-1)
    keys = np.round(np.column_stack([np.linalg.norm(x, axis=1), sat]) * 1000)
    order = np.lexsort(keys.T[::-1])  # the last key given is the primary one
    x = x[order]
    return x, np.linalg.norm(x[:, None] - x[None], axis=-1), sat[order], radius


@pytest.fixture(scope="module")
def batch():
    return make_batch(clusters())


@pytest.fixture(params=["cvae", "dae"])
def model(request):
    torch.manual_seed(0)
    return build_model(request.param, TINY).double()


def test_unit_sphere_view_matches_a_numpy_reference_for_any_atom_order(batch):
    points = satellites(5)
    for shuffled in (batch, make_batch(clusters(), shuffle_seed=4)):
        x, n, radius = ordered_unit_sphere(shuffled.pos, shuffled.mask, points)
        for b, atoms in enumerate(clusters()):
            ref_x, _, _, ref_radius = reference_view(atoms.positions - atoms.positions.mean(0), points.numpy())
            assert int(n[b]) == len(atoms) and float(radius[b]) == pytest.approx(ref_radius, rel=1e-12)
            np.testing.assert_allclose(x[b, :len(atoms)].numpy(), ref_x, atol=1e-12)
            assert float(x[b, len(atoms):].abs().sum()) == 0.0
    assert np.linalg.norm(ref_x, axis=1).max() == pytest.approx(1.0) and np.abs(ref_x[0]).max() == 0.0


def test_pairs_round_trip_between_matrix_and_upper_entries():
    d = torch.rand(2, 6, 6, dtype=torch.float64)
    d = (d + d.transpose(1, 2)) * (1 - torch.eye(6, dtype=torch.float64))
    upper = upper_pairs(d)
    assert upper.shape == (2, 15) and float(upper[1, 0]) == float(d[1, 0, 1]) and float(upper[1, 5]) == float(d[1, 1, 2])
    torch.testing.assert_close(symmetric_pairs(upper, 6), d, rtol=0, atol=0)
    with pytest.raises(ValueError, match="do not fill"):
        symmetric_pairs(upper, 7)


def test_loss_terms_match_a_float64_reference(model, batch):
    model.eval()
    out = model.loss(batch, beta=0.3)
    nodes, _, _, n, _ = model.features(batch.pos, batch.mask)
    y = model.pdf_input(batch.r, batch.g)
    mu_q, logvar_q = (t.detach().numpy() for t in model.posterior(nodes, n, y))
    mu_p, logvar_p = (t.detach().numpy() for t in model.prior(y))
    upper, sat, logits = (t.detach().numpy() for t in model.decode(torch.as_tensor(mu_q)))
    points = satellites(TINY["satellites"]).numpy()
    pair_terms, sat_terms, slot_terms = [], [], []
    for b, atoms in enumerate(clusters()):
        _, d, s, _ = reference_view(atoms.positions - atoms.positions.mean(0), points)
        count = len(atoms)
        decoded = np.zeros((TINY["n_max"], TINY["n_max"]))
        decoded[np.triu_indices(TINY["n_max"], 1)] = upper[b]
        pair_terms.append(np.mean([(decoded[i, j] - d[i, j]) ** 2 for i in range(count) for j in range(i + 1, count)]))
        sat_terms.append(np.mean((sat[b, :count] - s) ** 2))
        label = np.arange(TINY["n_max"]) < count
        prob = 1 / (1 + np.exp(-logits[b]))
        slot_terms.append(-np.mean(np.where(label, np.log(prob), np.log(1 - prob))))
    out = {k: v.detach() for k, v in out.items()}
    assert float(out["pair"]) == pytest.approx(np.mean(pair_terms), rel=1e-10)
    assert float(out["satellite"]) == pytest.approx(np.mean(sat_terms), rel=1e-10)
    assert float(out["slot"]) == pytest.approx(np.mean(slot_terms), rel=1e-8)
    if isinstance(model, DistanceDAE):
        prior_term = float(out["l2"])
        assert prior_term == pytest.approx(np.mean(((mu_q - mu_p) ** 2).sum(1)), rel=1e-10)
    else:  # KL of diagonal Gaussians in closed form
        prior_term = float(out["kl"])
        var_q, var_p = np.exp(logvar_q), np.exp(logvar_p)
        kl = 0.5 * (np.log(var_p / var_q) + (var_q + (mu_q - mu_p) ** 2) / var_p - 1).sum(1)
        assert prior_term == pytest.approx(kl.mean(), rel=1e-10)
    total = np.mean(pair_terms) + np.mean(sat_terms) + np.mean(slot_terms) + 0.3 * prior_term
    assert float(out["loss"]) == pytest.approx(total, rel=1e-8)


def test_loss_ignores_atom_order_and_padding_slots(model, batch):
    model.eval()
    with torch.no_grad():
        ours, theirs = model.loss(batch, 1.0), model.loss(make_batch(clusters(), shuffle_seed=7), 1.0)
    for key in ours:
        assert float(ours[key]) == pytest.approx(float(theirs[key]), rel=1e-10, abs=1e-14)


def test_gradients_reach_every_part(batch):
    torch.manual_seed(1)
    model = DistanceCVAE(DistanceParams(**TINY, pdf_weight=1.0)).double().train()
    out = model.loss(batch, 1.0)
    assert set(out) == {"pair", "satellite", "slot", "kl", "pdf", "loss"}
    out["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def numeric_gradient(f, parameter, index, h=1e-6) -> float:
    """Central difference of the number ``f()`` in one entry of ``parameter``."""
    values = []
    for step in (h, -h):
        with torch.no_grad():
            parameter.view(-1)[index] += step
            values.append(f())
            parameter.view(-1)[index] -= step
    return (values[0] - values[1]) / (2 * h)


def latents(model, batch):
    """(mu_q, logvar_q, mu_p, logvar_p) of the batch as float64 numpy arrays (B, H) (model in eval mode)."""
    with torch.no_grad():
        nodes, _, _, n, _ = model.features(batch.pos, batch.mask)
        y = model.pdf_input(batch.r, batch.g)
        return [t.numpy() for t in (*model.posterior(nodes, n, y), *model.prior(y))]


def kl_per_axis(mu_q, logvar_q, mu_p, logvar_p):
    """(B, H) KL(q || p) of diagonal Gaussians per latent axis, in closed form."""
    return 0.5 * (logvar_p - logvar_q + (np.exp(logvar_q) + (mu_q - mu_p) ** 2) / np.exp(logvar_p) - 1)


@pytest.mark.parametrize("name", ["cvae", "dae"])
@pytest.mark.parametrize("prior_weight", [0.0, 2.0])
def test_prior_weight_trains_the_prior_at_its_own_rate_whatever_beta(name, prior_weight, batch):
    """The prior network's gradient is beta dD (joint) or prior_weight dF (split): for the DAE F = D = |mu_q -
    mu_p|^2, for the CVAE F = sum_h c_h KL_h with c = sigma_p^2 held at its value; the encoder's is beta dD."""
    torch.manual_seed(4)
    model = build_model(name, {**TINY, "prior_weight": prior_weight}).double().eval()  # eval: z = mu_q, no noise
    prior_bias, encoder_bias = model.prior_convs[2].conv.bias, model.encoder[-1].bias
    c = np.exp(latents(model, batch)[3])

    def divergence():
        mu_q, logvar_q, mu_p, logvar_p = latents(model, batch)
        if name == "dae":
            return ((mu_q - mu_p) ** 2).sum(1).mean()
        return kl_per_axis(mu_q, logvar_q, mu_p, logvar_p).sum(1).mean()

    def fit():
        return (c * kl_per_axis(*latents(model, batch))).sum(1).mean() if name == "cvae" else divergence()

    heads = range(prior_bias.numel())  # the values and gates of the prior's mean and log-variance outputs
    d_prior = np.array([numeric_gradient(fit if prior_weight else divergence, prior_bias, i) for i in heads])
    d_encoder = np.array([numeric_gradient(divergence, encoder_bias, i) for i in range(2)])
    grads = {}
    for beta in (1e-3, 0.5):
        model.zero_grad()
        out = model.loss(batch, beta)
        out["loss"].backward()
        grads[beta] = prior_bias.grad.clone().numpy(), encoder_bias.grad[:2].clone().numpy()
        # the loss's value does not depend on prior_weight: the divergence at weight beta
        out = {k: float(v.detach()) for k, v in out.items()}
        rest = out["pair"] + out["satellite"] + out["slot"]
        assert out[model.divergence_name] == pytest.approx(divergence(), rel=1e-10)
        assert out["loss"] == pytest.approx(rest + beta * out[model.divergence_name], rel=1e-12)
    for beta in (1e-3, 0.5):
        np.testing.assert_allclose(grads[beta][0], (prior_weight or beta) * d_prior, rtol=1e-5, atol=1e-12)
    # the encoder always sees beta dD on top of the reconstruction's gradient
    np.testing.assert_allclose(grads[0.5][1] - grads[1e-3][1], (0.5 - 1e-3) * d_encoder, rtol=1e-5, atol=1e-12)
    assert np.abs(d_prior).max() > 1e-3


def test_prior_pool_max_takes_the_largest_value_of_each_window(batch):
    torch.manual_seed(6)
    model = build_model("cvae", {**TINY, "prior_pool": "max"}).double().eval()
    y = model.pdf_input(batch.r, batch.g)
    with torch.no_grad():
        x = y[:, None, :].numpy()
        for conv, length in zip(model.prior_convs[:2], TINY["prior_lengths"]):
            x = conv(torch.as_tensor(x)).numpy()
            size = x.shape[-1]  # adaptive windows [floor(i L / l), ceil((i + 1) L / l))
            x = np.stack([x[..., (i * size) // length:-((-(i + 1) * size) // length)].max(-1)
                          for i in range(length)], -1)
        mu, _ = model.prior(y)
        out = model.prior_convs[2](torch.as_tensor(x))[..., 0]
    torch.testing.assert_close(mu, out[:, :TINY["latent_dim"]], rtol=1e-12, atol=1e-12)


def test_pair_distribution_matches_a_numpy_reference_and_its_gradient():
    rng = np.random.default_rng(0)
    d = torch.tensor(rng.uniform(2.0, 6.0, (2, 10)), requires_grad=True)
    keep = torch.as_tensor(rng.random((2, 10)) < 0.7)
    n = torch.tensor([5, 4])
    r = torch.linspace(1.0, 8.0, 71, dtype=torch.float64)
    out = pair_distribution(d, keep, n, r, 0.2)
    ref, values = np.zeros((2, 71)), d.detach().numpy()
    for b in range(2):
        for m in range(10):
            if keep[b, m]:
                ref[b] += np.exp(-0.5 * ((r.numpy() - values[b, m]) / 0.2) ** 2) / (0.2 * np.sqrt(2 * np.pi))
        ref[b] /= r.numpy() * int(n[b])
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-12)
    out[0, 30].backward()
    h = 1e-6
    for m in (0, 3):
        shifted = d.detach().clone()
        shifted[0, m] += h
        numeric = (pair_distribution(shifted, keep, n, r, 0.2)[0, 30] - out[0, 30].detach()) / h
        assert float(d.grad[0, m]) == pytest.approx(float(numeric), rel=1e-4, abs=1e-9)


def test_the_pdf_term_vanishes_for_the_true_distances_and_not_for_others(batch):
    torch.manual_seed(2)
    model = DistanceCVAE(DistanceParams(**TINY, pdf_weight=1.0)).double().eval()
    nodes, pair, _, n, radius = model.features(batch.pos, batch.mask)
    keep = upper_pairs(torch.arange(TINY["n_max"])[None, :, None].expand(3, -1, TINY["n_max"]) < n[:, None, None])
    r = model.grid
    truth = pair_distribution(upper_pairs(pair) * radius[:, None], keep, n, r, 0.1)
    # the sharp pair distribution of the fcc cut peaks at the Pd bond, 2.75 Angstrom
    first = int(torch.argmin((r - 2 * 1.375).abs()))
    assert float(truth[0, first]) > 10 * float(truth[0, first - 8])
    assert float(model.loss(batch, 1.0)["pdf"].detach()) > 0


def test_dae_never_samples_and_cvae_samples_widen_the_prior(batch):
    torch.manual_seed(3)
    dae = DistanceDAE(DistanceParams(**TINY)).double().train()
    first, second = dae.loss(batch, 1.0), dae.loss(batch, 1.0)
    assert float(first["loss"]) == float(second["loss"])  # train mode: still no noise
    decoded = dae.eval().sample(batch.r, batch.g[0], 7, (1.0, 3.0))
    assert decoded.pair.shape == (1, 20, 20) and decoded.to_points.shape == (1, 20, 5)
    cvae = DistanceCVAE(DistanceParams(**TINY)).double().eval()
    decoded = cvae.sample(batch.r, batch.g[0], 4, (1.0, 3.0))
    assert decoded.pair.shape == (8, 20, 20) and decoded.widen.tolist() == [1.0] * 4 + [3.0] * 4
    torch.testing.assert_close(decoded.pair, decoded.pair.transpose(1, 2), rtol=0, atol=0)
    assert float(decoded.pair.min()) >= 0 and float(decoded.to_points.min()) >= 0
    with torch.no_grad():
        mu, logvar = cvae.prior(cvae.pdf_input(batch.r, batch.g[:1]))
    torch.manual_seed(5)
    z = cvae.sample(batch.r, batch.g[0], 4000, (2.0,)).z
    np.testing.assert_allclose(z.std(0).numpy(), 2.0 * torch.exp(0.5 * logvar[0]).numpy(), rtol=0.06)
    np.testing.assert_allclose(z.mean(0).numpy(), mu[0].numpy(), atol=0.1 * float(torch.exp(0.5 * logvar).max()))


def test_bad_input_raises_clear_errors(batch):
    with pytest.raises(ValueError, match="satellites"):
        DistanceParams(satellites=1)
    with pytest.raises(ValueError, match="odd kernel"):
        DistanceParams(kernel=4)
    with pytest.raises(ValueError, match="prior_lengths"):
        DistanceParams(prior_lengths=(48,))
    with pytest.raises(ValueError, match="prior_pool"):
        DistanceParams(prior_pool="median")
    small = DistanceCVAE(DistanceParams(**{**TINY, "n_max": 10})).double()
    with pytest.raises(ValueError, match="exceeds the model's n_max"):
        small.loss(batch, 1.0)
    with pytest.raises(ValueError, match="one PDF"):
        small.sample(batch.r, batch.g, 2)


@pytest.mark.parametrize("name", ["cvae", "dae"])
def test_cli_trains_both_models(name, tmp_path_factory, capsys):
    data = au_dataset(tmp_path_factory.mktemp("data"), 5, 14, (0.6, 0.2, 0.2), seed=0, shard_size=16)
    settings = tmp_path_factory.mktemp("cfg") / "tiny.json"
    settings.write_text(json.dumps({"model_params": {k: v for k, v in TINY.items() if k != "n_max"}, "patience": 0}))
    run = tmp_path_factory.mktemp("run") / name
    status, out, err = run_cli(["train", name, "--data", data, "--out", run, "--config", settings, "--epochs", "2",
                                "--batch-size", "8", "--no-progress"], capsys)
    assert status == 0 and "finished after 2 epoch(s)" in out, err
    model, config = load_model(run / "best.pt")
    assert config["model"] == name and model.params.n_max == 14 and model.deterministic == (name == "dae")
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert len(history) == 2 and ("val_kl" in history[0]) == (name == "cvae")
