"""DeepStruc model: shapes, an ELBO that ignores atom order and orientation, free latent widths, the count head."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pdfsolve import simulate_pdf
from pdfsolve.models import DeepStruc, DeepStrucParams, build_model, model_params
from pdfsolve.models.inputs import resample_pdf
from pdfsolve.models.layers import LOGVAR_LIMIT, gaussian_kl, gaussian_parameters, reparameterise
from pdfsolve.models.losses import matched_loss, structure_loss
from pdfsolve.structures import motifs
from pdfsolve.training import Batch
from _models import au_dataset, one_thread  # noqa: F401 (one_thread: autouse fixture)

#: A small model for fast tests (a few thousand weights).
TINY = dict(n_max=24, latent_dim=3, hidden=16, graph_layers=2, n_rbf=8, pdf_channels=(4, 8),
            pdf_dim=16, decoder_hidden=(32,))


def clusters():
    """Three Au clusters of 13, 19 and 7 atoms (Angstrom), centred."""
    return [motifs.icosahedron(2, element="Au"), motifs.octahedron(3, 0, element="Au"),
            motifs.decahedron(2, 1, 0, element="Au")]


def make_batch(atoms_list, dtype=torch.float64) -> Batch:
    """A padded batch with fast-mode PDFs on r = 0-30 Angstrom."""
    n = max(len(a) for a in atoms_list)
    pos = torch.zeros(len(atoms_list), n, 3, dtype=dtype)
    for k, a in enumerate(atoms_list):
        pos[k, :len(a)] = torch.as_tensor(a.positions - a.positions.mean(0), dtype=dtype)
    counts = torch.tensor([len(a) for a in atoms_list])
    res = simulate_pdf(atoms_list, mode="fast")
    return Batch(pos, torch.arange(n)[None] < counts[:, None], counts, torch.as_tensor(res.r), res.G.to(dtype),
                 torch.arange(len(atoms_list)))


def shuffled(batch: Batch, seed: int) -> Batch:
    """The same clusters, each rotated (proper or improper), translated and with its atoms permuted and moved to
    other slots of a wider padding."""
    rng = np.random.default_rng(seed)
    width = batch.pos.shape[1] + 3
    pos = torch.zeros(len(batch), width, 3, dtype=batch.pos.dtype)
    mask = torch.zeros(len(batch), width, dtype=torch.bool)
    for b in range(len(batch)):
        xyz = batch.pos[b, batch.mask[b]].numpy()
        rot = Rotation.random(random_state=seed + b).as_matrix() * (-1 if b % 2 else 1)
        xyz = xyz[rng.permutation(len(xyz))] @ rot.T + rng.normal(size=3)
        slots = np.sort(rng.choice(width, size=len(xyz), replace=False))
        pos[b, slots] = torch.as_tensor(xyz)
        mask[b, slots] = True
    return Batch(pos, mask, batch.n_atoms, batch.r, batch.g, batch.index)


@pytest.fixture(scope="module")
def batch():
    return make_batch(clusters())


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DeepStruc(DeepStrucParams(**TINY)).double()


def test_structure_loss_ignores_order_orientation_and_origin(batch):
    torch.manual_seed(1)
    decoded = 3.0 * torch.randn(len(batch), 24, 3, dtype=torch.float64)
    a = structure_loss(decoded, batch.pos, batch.mask)
    b = structure_loss(decoded, *(lambda s: (s.pos, s.mask))(shuffled(batch, 5)))
    for key in ("pair", "radial", "nearest"):
        assert (a[key] > 0.1).all()
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-10)


def test_structure_loss_is_zero_for_the_true_cluster_in_any_frame(batch):
    other = shuffled(batch, 9)
    decoded = torch.zeros(len(batch), 24, 3, dtype=torch.float64)
    for b in range(len(batch)):
        n = int(batch.n_atoms[b])
        decoded[b, :n] = other.pos[b, other.mask[b]] + 7.0  # another order, frame and origin
        decoded[b, n:] = 100.0  # atoms past N are not compared
    out = structure_loss(decoded, batch.pos, batch.mask)
    assert all(float(v.max()) < 1e-20 for v in out.values()) and set(out) == {"pair", "radial", "nearest"}


def test_elbo_ignores_atom_order_and_orientation_of_the_target(model, batch):
    model.eval()  # the posterior mean: deterministic
    a, b = model.loss(batch, 0.7), model.loss(shuffled(batch, 3), 0.7)
    for key in ("loss", "pair", "radial", "nearest", "count", "kl"):
        assert abs(a[key].item() - b[key].item()) <= 1e-10 * max(1.0, abs(a[key].item())), key


def test_shapes_and_gradients_reach_every_part(model, batch):
    model.train()
    out = model.loss(batch, 0.5)
    assert set(out) == {"loss", "pair", "radial", "nearest", "count", "kl"} and all(v.dim() == 0 for v in out.values())
    out["loss"].backward()
    for name in ("pdf_encoder", "prior_head", "graph_encoder", "posterior_head", "decoder", "count_head"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads), name
    y = model.embed_pdf(batch.r, batch.g)
    z = torch.zeros(len(batch), TINY["latent_dim"], dtype=torch.float64)
    assert y.shape == (3, TINY["pdf_dim"])
    assert model.decode(z, y).shape == (3, 24, 3) and model.count_logits(z, y).shape == (3, 24)


def test_latent_widths_fall_below_one_and_widening_scales_them():
    torch.manual_seed(2)
    mu, logvar = torch.zeros(20000, 2, dtype=torch.float64), torch.full((20000, 2), math.log(0.01), dtype=torch.float64)
    assert abs(float(reparameterise(mu, logvar).std()) - 0.1) < 0.003
    assert abs(float(reparameterise(mu, logvar, 3.0).std()) - 0.3) < 0.01
    assert abs(float(gaussian_kl(mu[:1], logvar[:1], mu[:1], logvar[:1]))) < 1e-15
    _, bounded = gaussian_parameters(torch.tensor([0.0, 0.0, -1e6, -3.0]))
    assert float(bounded[0]) == pytest.approx(-LOGVAR_LIMIT) and float(bounded[1]) < -2.9  # sigma << 1 allowed
    # KL(N(0, 0.1^2) || N(0, 1)) per dimension = (0.01 - 1 - ln 0.01) / 2
    assert math.isclose(float(gaussian_kl(mu[:1], logvar[:1], mu[:1], 0 * logvar[:1])),
                        2 * 0.5 * (0.01 - 1 - math.log(0.01)), rel_tol=1e-12)


def test_prior_samples_follow_sigma_and_widening(model, batch):
    with torch.no_grad():
        model.prior_head[-1].weight.zero_()
        raw = LOGVAR_LIMIT * math.atanh(2 * math.log(0.2) / LOGVAR_LIMIT)  # sigma = 0.2
        model.prior_head[-1].bias.copy_(torch.tensor([0.5, -0.5, 1.0] + [raw] * 3))
    torch.manual_seed(3)
    s = model.sample(batch.r, batch.g[0], 4000, widen=(1.0, 3.0))
    assert s.pos.shape == (8000, 24, 3) and s.z.shape == (8000, 3)
    for k, factor in enumerate((1.0, 3.0)):
        z = s.z[k * 4000:(k + 1) * 4000]
        torch.testing.assert_close(z.mean(0), torch.tensor([0.5, -0.5, 1.0], dtype=torch.float64), atol=0.05, rtol=0)
        torch.testing.assert_close(z.std(0), torch.full((3,), 0.2 * factor, dtype=torch.float64), atol=0.02, rtol=0)
        assert (s.widen[k * 4000:(k + 1) * 4000] == factor).all()


def test_count_head_sets_the_number_of_decoded_atoms(model, batch):
    with torch.no_grad():
        model.count_head[-1].weight.zero_()
        model.count_head[-1].bias.copy_(torch.arange(24) == 6)  # N = 7 most likely
    s = model.sample(batch.r, batch.g[1], 5)
    assert (s.n_atoms == 7).all() and s.mask.sum(1).tolist() == [7] * 5
    torch.testing.assert_close(s.pos[:, :7].mean(1), torch.zeros(5, 3, dtype=torch.float64), atol=1e-12, rtol=0)
    # the head learns the true counts from the PDF (trained with the PDF encoder, z at the prior mean)
    model.eval()
    z = model.prior(model.embed_pdf(batch.r, batch.g))[0].detach()
    params = list(model.count_head.parameters()) + list(model.pdf_encoder.parameters())
    opt = torch.optim.Adam(params, lr=0.03)

    def cross_entropy():
        logits = model.count_logits(z, model.embed_pdf(batch.r, batch.g))
        return torch.nn.functional.cross_entropy(logits, batch.n_atoms - 1)

    first = cross_entropy().item()
    for _ in range(60):
        opt.zero_grad()
        cross_entropy().backward()
        opt.step()
    assert cross_entropy().item() < 0.1 * first


def test_default_model_fits_the_weight_budget():
    m = build_model("deepstruc", {"n_max": 256})
    size = sum(p.numel() * p.element_size() for p in m.parameters())
    assert size <= 20e6, size


def test_pdf_input_is_scale_free_and_zero_outside_the_data():
    r = torch.arange(0, 3000) * 0.01
    g = torch.sin(3 * r)[None].repeat(2, 1) * torch.tensor([[1.0], [4.0]])
    grid = torch.arange(150, 3100, 2) * 0.01
    out = resample_pdf(r, g, grid)
    torch.testing.assert_close(out[0], out[1])
    assert float(out.abs().max()) == pytest.approx(1.0) and (out[0, grid > r[-1]] == 0).all()


@pytest.mark.parametrize("call, message", [
    (lambda: model_params("deepstruc", {"n_max": 0}), "n_max must be >= 1"),
    (lambda: model_params("deepstruc", {"width": 3}), "no hyper-parameter"),
    (lambda: build_model("nope"), "unknown model"),
    (lambda: model_params("deepstruc", {"pdf_rmin": 40.0}), "rmin < rmax"),
    (lambda: resample_pdf(torch.arange(10.0), torch.zeros(1, 10), torch.arange(5.0)), "zero"),
    (lambda: resample_pdf(torch.arange(10.0), torch.zeros(1, 9), torch.arange(5.0)), "G \\(B, nr\\)"),
])
def test_bad_input_raises_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_model_refuses_clusters_larger_than_n_max_and_batched_sampling(model, batch):
    small = DeepStruc(DeepStrucParams(**dict(TINY, n_max=15))).double()
    with pytest.raises(ValueError, match="19 atoms exceeds the model's n_max = 15"):
        small.loss(batch, 1.0)
    with pytest.raises(ValueError, match="one PDF"):
        model.sample(batch.r, batch.g, 3)
    with pytest.raises(ValueError, match="decoded"):
        structure_loss(torch.zeros(3, 10, 3), batch.pos, batch.mask)


def test_count_head_reads_the_prior_latent_not_the_posterior(model, batch):
    model.eval()
    y = model.embed_pdf(batch.r, batch.g)
    logits = model.count_logits(model.prior(y)[0], y)
    expected = torch.nn.functional.cross_entropy(logits, batch.n_atoms - 1)
    assert model.loss(batch, 1.0)["count"].item() == pytest.approx(expected.item(), rel=1e-12)


def test_count_targets_are_gaussians_about_the_true_count_and_enter_the_loss(batch):
    from pdfsolve.models.losses import count_targets

    t = count_targets(torch.tensor([1, 100, 200]), 200, 0.05)
    n = torch.arange(1, 201, dtype=torch.float64)
    torch.testing.assert_close(t.sum(1), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-14)
    assert t.argmax(1).tolist() == [0, 99, 199]  # N = 1, 100, 200
    mean = (t[1] * n).sum()
    assert float(mean) == pytest.approx(100.0, abs=1e-9)  # symmetric, far from the ends
    assert float(((t[1] * (n - mean) ** 2).sum()).sqrt()) == pytest.approx(5.0, rel=1e-3)  # 0.05 * 100 atoms
    assert float(t[0, 0]) > 0.6 and float(t[0, 2]) < 1e-3  # sigma never below half an atom
    with pytest.raises(ValueError, match="width must be > 0"):
        count_targets(torch.tensor([3]), 10, 0.0)
    torch.manual_seed(0)
    model = DeepStruc(DeepStrucParams(**TINY, count_width=0.1)).double().eval()
    y = model.embed_pdf(batch.r, batch.g)
    logp = torch.log_softmax(model.count_logits(model.prior(y)[0], y), -1)
    expected = -(count_targets(batch.n_atoms, 24, 0.1) * logp).sum(1).mean()
    assert model.loss(batch, 1.0)["count"].item() == pytest.approx(expected.item(), rel=1e-12)
    with pytest.raises(ValueError, match="count_width >= 0"):
        DeepStrucParams(count_width=-0.1)


def test_graph_encoder_gives_each_cluster_the_same_embedding_in_any_batch(model):
    """Clusters are encoded in size-sorted groups of ENCODER_CHUNK: the grouping must not change any result."""
    from pdfsolve.models.layers import ENCODER_CHUNK

    shapes = [motifs.icosahedron(2, element="Au"), motifs.decahedron(2, 1, 0, element="Au"),
              motifs.octahedron(3, 0, element="Au"), motifs.icosahedron(3, element="Au")]
    atoms_list = [shapes[k % 4] for k in range(ENCODER_CHUNK + 5)]
    batch = make_batch([a.copy() for a in atoms_list])
    together = model.graph_encoder(batch.pos, batch.mask)
    for b, atoms in enumerate(atoms_list):
        alone = model.graph_encoder(batch.pos[b:b + 1, :len(atoms)], batch.mask[b:b + 1, :len(atoms)])
        torch.testing.assert_close(together[b], alone[0], rtol=0, atol=1e-12)


def test_nearest_term_flags_atoms_that_crowd_together(batch):
    decoded = torch.zeros(len(batch), 24, 3, dtype=torch.float64)
    for b in range(len(batch)):
        decoded[b, :int(batch.n_atoms[b])] = batch.pos[b, batch.mask[b]]
    decoded[:, 1] = decoded[:, 0] + 0.5  # one pair 0.87 Angstrom apart
    out = structure_loss(decoded, batch.pos, batch.mask)
    assert (out["nearest"] > 2 * out["pair"]).all() and (out["nearest"] > 0.4).all()


def test_matched_loss_superposes_any_order_and_frame_and_measures_the_rest(batch):
    other = shuffled(batch, 4)
    decoded = torch.zeros(len(batch), 24, 3, dtype=torch.float64)
    for b in range(len(batch)):
        n = int(batch.n_atoms[b])
        decoded[b, :n] = other.pos[b, other.mask[b]] + 2.0
        decoded[b, n:] = 50.0  # past N: not compared
    assert float(matched_loss(decoded, batch.pos, batch.mask).max()) < 1e-20
    torch.manual_seed(2)
    noise = 0.05 * torch.randn_like(decoded)
    noisy = matched_loss(decoded + noise, batch.pos, batch.mask)
    for b in range(len(batch)):  # the noise, less its mean (centring) and what a rotation absorbs: about 3 sigma^2
        n = int(batch.n_atoms[b])
        centred_noise = noise[b, :n] - noise[b, :n].mean(0)
        assert 0.3 * float((centred_noise ** 2).sum(1).mean()) < float(noisy[b]) <= float((centred_noise ** 2).sum(1).mean())


def test_matched_loss_gradient_matches_finite_differences(batch):
    torch.manual_seed(3)
    other = shuffled(batch, 6)
    decoded = torch.zeros(len(batch), 24, 3, dtype=torch.float64)
    for b in range(len(batch)):
        decoded[b, :int(batch.n_atoms[b])] = other.pos[b, other.mask[b]]
    decoded = (decoded + 0.1 * torch.randn_like(decoded)).requires_grad_()
    # the assignment and rotation are held fixed: piecewise smooth, smooth at a point 0.1 Angstrom from the truth
    assert torch.autograd.gradcheck(lambda x: matched_loss(x, batch.pos, batch.mask), (decoded,), eps=1e-6, atol=1e-6)
