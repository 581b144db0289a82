"""CbLDM: the canonical affinity image against a float64 reference, stage-wise losses and gradients, batched
sampling, and the route from sampled affinities to ranked clusters."""
import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from pdfsolve.geometry.laplacian import from_blocks
from pdfsolve.models import CbLDM, CbLDMParams, build_model
from pdfsolve.models.cbldm import affinity_blocks, canonical_order
from pdfsolve.routes.cbldm import propose, solve
from pdfsolve.structures import motifs
from test_deepstruc_model import clusters, make_batch, shuffled
from _models import one_thread  # noqa: F401 (autouse fixture)

#: 32 atoms at most (4 blocks of 16), a 2 x 4 x 4 latent image, a few thousand weights.
TINY = dict(block=16, vae_channels=(4, 8), latent_channels=2, pdf_channels=(4, 8), cond_dim=8, unet_width=8, t1=50)


@pytest.fixture(scope="module")
def batch():
    return make_batch(clusters())


def model(**changes) -> CbLDM:
    torch.manual_seed(0)
    return build_model("cbldm", {**TINY, **changes}).double()


def test_affinity_image_is_the_canonical_padded_affinity(batch):
    blocks = affinity_blocks(batch.pos, batch.mask, 16, 11.4)
    assert blocks.shape == (3, 4, 16, 16)
    w = from_blocks(blocks)
    for b in range(3):
        xyz = batch.pos[b, batch.mask[b]].numpy()
        xyz = xyz - xyz.mean(0)
        r = np.linalg.norm(xyz, axis=1)
        order = np.lexsort(np.round((xyz[:, 2], xyz[:, 1], xyz[:, 0], r), 6))
        ref = np.exp(-cdist(xyz[order], xyz[order]) ** 2 / (2 * 11.4**2))
        n = len(xyz)
        np.testing.assert_allclose(w[b, :n, :n].numpy(), ref, rtol=0, atol=1e-12)
        assert float(w[b, n:].abs().max()) == 0 and float(w[b, :, n:].abs().max()) == 0
    # any atom order, slot layout or origin of the input: the same image (a rotation changes only ties' order,
    # which these clusters' shells have, so compare the sorted rows)
    other = shuffled(batch, 3)
    moved = from_blocks(affinity_blocks(other.pos, other.mask, 16, 11.4))
    torch.testing.assert_close(moved.sort(-1).values.sort(-2).values, w.sort(-1).values.sort(-2).values)


def test_canonical_order_ignores_the_input_order():
    xyz = torch.as_tensor(motifs.octahedron(3, 0, element="Au").positions)[None] + 2.0
    mask = torch.ones(1, len(xyz[0]), dtype=torch.bool)
    perm = torch.randperm(xyz.shape[1], generator=torch.Generator().manual_seed(0))
    a, _ = canonical_order(xyz, mask)
    b, _ = canonical_order(xyz[:, perm], mask)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert float(a.mean(1).abs().max()) < 1e-12  # centred


def test_vae_stage_trains_the_vaes_and_the_diffusion_stage_only_the_denoiser(batch):
    vae = model().train()
    out = vae.loss(batch, 0.5)
    assert set(out) == {"loss", "w", "kl", "pdf", "kl_c"}
    torch.testing.assert_close(out["loss"], out["w"] + 0.5 * out["kl"] + out["pdf"] + 0.5 * out["kl_c"])
    out["loss"].backward()
    denoising = ("denoiser", "token_projection")
    for name, p in vae.named_parameters():
        assert (p.grad is not None) == (not name.startswith(denoising)), name
    diffusion = model(stage="diffusion").train()
    out = diffusion.loss(batch, 0.5)
    assert set(out) == {"loss", "eps"} and 0.2 < out["eps"].item() < 5  # an untrained predictor: ~ E[eps^2] = 1
    out["loss"].backward()
    for name, p in diffusion.named_parameters():
        assert (p.grad is not None) == name.startswith(denoising), name


def test_w_term_weighs_the_real_block_and_the_padding_equally(batch):
    m = model().eval()
    blocks = affinity_blocks(batch.pos, batch.mask, 16, m.params.sigma)
    mu, _ = m.encode(blocks)
    sq = ((from_blocks(m.decode(mu)) - from_blocks(blocks)) ** 2).detach().numpy()
    expected = []
    for b, n in enumerate(batch.n_atoms.tolist()):  # the real atoms come first in the canonical order
        real = np.zeros((32, 32), dtype=bool)
        real[:n, :n] = True
        expected.append(sq[b][real].mean() + sq[b][~real].mean())
    assert m.loss(batch, 0.0)["w"].item() == pytest.approx(np.mean(expected), rel=1e-12)


def test_sampling_is_batched_symmetric_and_checks_its_input(batch):
    m = model(stage="diffusion").eval()
    for start, steps in (("prior", 0), ("prior", 5), ("noise", 3)):
        w = m.sample(batch.r, batch.g[:2], 3, steps=steps, start=start)
        assert w.shape == (6, 32, 32) and bool(torch.isfinite(w).all())
        torch.testing.assert_close(w, w.transpose(1, 2))
        assert float(w.min()) >= 0 and float(w.max()) <= 1
    torch.manual_seed(1)
    a = m.sample(batch.r, batch.g[:2], 2, steps=0)
    torch.manual_seed(1)
    b = m.sample(batch.r, batch.g[1:2], 2, steps=0)
    assert a.shape == (4, 32, 32) and b.shape == (2, 32, 32)
    for kwargs, message in ((dict(k=0), "k >= 1"), (dict(k=1, start="x"), "start"), (dict(k=1, steps=0, start="noise"),
                                                                                       "at least one step")):
        with pytest.raises(ValueError, match=message):
            m.sample(batch.r, batch.g[:1], **kwargs)
    with pytest.raises(ValueError, match="exceeds"):
        model(block=4, vae_channels=(4,)).loss(batch, 0.0)


def test_bad_parameters_raise():
    for changes, message in ((dict(stage="x"), "stage"), (dict(block=12), "divisible"), (dict(t1=0), "t1")):
        with pytest.raises(ValueError, match=message):
            CbLDMParams(**{**TINY, **changes})


def decoding(xyz: np.ndarray) -> CbLDM:
    """A tiny model whose decoder returns the affinity blocks of ``xyz`` (n, 3) [Angstrom] for every latent."""
    m = model().float().eval()
    target = affinity_blocks(torch.as_tensor(xyz, dtype=torch.float32)[None], torch.ones(1, len(xyz), dtype=torch.bool),
                             16, m.params.sigma)[0]
    last = m.structure_decoder[-2]  # the last transposed convolution, before the sigmoid
    with torch.no_grad():
        last.weight.zero_()
        logit = torch.logit(target.clamp(1e-7, 1 - 1e-7), eps=None)
        last.bias.zero_()
        m.structure_decoder[-1] = _Constant(logit)
    return m


class _Constant(torch.nn.Module):
    """Replaces the decoder's sigmoid: returns sigmoid(logit) for every input (the blocks of a fixed W)."""

    def __init__(self, logit):
        super().__init__()
        self.register_buffer("logit", logit)

    def forward(self, x):
        return torch.sigmoid(self.logit).expand(len(x), -1, -1, -1)


def test_route_recovers_and_ranks_the_decoded_cluster():
    import ase

    from pdfsolve import PDFParameters, simulate_pdf
    from pdfsolve.metrics import aligned_mae
    from pdfsolve.target import Target

    ico = motifs.icosahedron(2, element="Pt").positions
    params = PDFParameters(qmin=0.8, qmax=24.0, qdamp=0.03, biso=0.4, scale=0.7)
    res = simulate_pdf(ase.Atoms("Pt13", positions=1.02 * ico), params, mode="exact")
    target = Target.from_arrays(res.r, res.G[0].numpy(), 0.8, 24.0, 0.03)
    m = decoding(ico)
    proposed = propose(m, target, k=2, steps=0, element="Pt")
    assert len(proposed) == 2 and all(len(a) == 13 for a in proposed)
    assert aligned_mae(proposed[0].positions, ico) < 1e-3  # float32 W: the fit is good to ~1e-4 Angstrom
    result = solve(target, m, k=2, steps=0, n_refine=1, element="Pt")
    best = result.ranked_structure(0)
    assert result.method == "cbldm" and best.info["rwp"] < 0.02
    assert best.info["expansion"] == pytest.approx(1.02, abs=0.002)
    with pytest.raises(ValueError, match="no metallic radius"):
        solve(target, m, k=1, element="Xx")


def test_shipped_weights_match_their_record_and_sample_affinities():
    import hashlib

    from pdfsolve.models.weights import load_weights, shipped_weights
    from pdfsolve.reconstruct import count_atoms

    path, record = shipped_weights("cbldm")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"] and path.stat().st_size < 20e6
    m, config = load_weights(None, "cbldm")
    assert config["model_params"]["stage"] == "diffusion" and record["trained"]["model_params"] == config["model_params"]
    assert sum(p.numel() for p in m.parameters()) == 1_637_041
    batch = make_batch([motifs.icosahedron(3, element="Au"), motifs.icosahedron(4, element="Au")],
                       dtype=torch.float32)
    torch.manual_seed(0)
    w = m.sample(batch.r, batch.g, 8, steps=5)
    assert w.shape == (16, 256, 256) and bool(torch.isfinite(w).all())
    small, large = count_atoms(w.double()).float().reshape(2, 8).median(1).values.tolist()
    assert 45 <= small <= 70 and 115 <= large <= 160  # Au55 and Au147: sizes read from the PDF (60, 131 measured)
