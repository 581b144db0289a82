"""Loading of the compiled ops (``pdfsolve._C``), their autograd and fake registrations, and the fallback.

The compiled extension registers the schemas and the CPU/CUDA kernels of ``torch.ops.pdfsolve.*``
(``csrc/ops.cpp``). This module adds, in Python:

* autograd for ``debye_partials`` and ``pair_histogram`` (their backward calls the ``*_backward`` ops);
* fake (meta) kernels for all four ops, so they trace under ``torch.compile`` / ``torch.export``;
* the choice, per call, between the compiled op and the plain-torch reference (:mod:`.reference`).

The reference is used, with a :class:`RuntimeWarning` issued once per reason, when the extension cannot be
imported, when the op has no kernel for the tensor's device, or when the environment variable
``PDFSOLVE_FORCE_REFERENCE=1`` is set (read on every call, so it can be switched at run time).
"""
from __future__ import annotations

import importlib
import os
import warnings

import torch  # must be imported before pdfsolve._C (which links against libtorch)

from . import reference

_OPS = ("debye_partials", "debye_partials_backward", "pair_histogram", "pair_histogram_backward")
_DEVICE_KEYS = {"cpu": "CPU", "cuda": "CUDA", "meta": "Meta"}

_warned: set[str] = set()


def _warn_once(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(reason, RuntimeWarning, stacklevel=4)


def _load_extension() -> tuple[bool, str]:
    try:
        importlib.import_module("pdfsolve._C")
    except ImportError as exc:  # missing or unloadable shared library
        return False, f"{type(exc).__name__}: {exc}"
    missing = [name for name in _OPS if not hasattr(torch.ops.pdfsolve, name)]
    if missing:
        return False, f"pdfsolve._C does not define {missing}"
    return True, ""


_EXT_OK, _EXT_ERROR = _load_extension()


def extension_available() -> bool:
    """True when the compiled extension ``pdfsolve._C`` was loaded (whatever devices it has kernels for)."""
    return _EXT_OK


def force_reference() -> bool:
    """True when ``PDFSOLVE_FORCE_REFERENCE`` is set to a non-empty value other than ``0``."""
    return os.environ.get("PDFSOLVE_FORCE_REFERENCE", "").strip() not in ("", "0")


def has_kernel(op: str, device: torch.device | str) -> bool:
    """Whether the compiled op ``pdfsolve::<op>`` has a kernel for ``device`` (False without the extension)."""
    if not _EXT_OK:
        return False
    key = _DEVICE_KEYS.get(torch.device(device).type)
    if key is None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"pdfsolve::{op}", key)


def use_compiled(op: str, device: torch.device) -> bool:
    """Decides between the compiled op and the reference for one call, warning once per reason."""
    if force_reference():
        _warn_once("PDFSOLVE_FORCE_REFERENCE is set: pdfsolve ops use the plain-torch reference implementations")
        return False
    if not _EXT_OK:
        _warn_once(f"pdfsolve._C is not available ({_EXT_ERROR}); pdfsolve ops use the plain-torch reference "
                   "implementations")
        return False
    if not has_kernel(op, device):
        _warn_once(f"pdfsolve::{op} has no compiled kernel for device type '{torch.device(device).type}'; "
                   "using the plain-torch reference implementation")
        return False
    return True


_registered_families: set[str] = set()


def register_once(family: str, ops: tuple[str, ...], register_fn) -> bool:
    """Runs ``register_fn()`` (autograd and fake registrations of an op family) once, when the compiled extension
    defines every op in ``ops``. Returns True when the family is registered (now or before), else False."""
    if family in _registered_families:
        return True
    if not _EXT_OK or not all(hasattr(torch.ops.pdfsolve, op) for op in ops):
        return False
    register_fn()
    _registered_families.add(family)
    return True


def register_pos_backward(op: str) -> None:
    """Autograd of ``pdfsolve::<op>`` whose only differentiable input is its first, ``pos``: the backward calls
    ``pdfsolve::<op>_backward(grad, *inputs)`` and returns the gradient of ``pos``."""
    backward_op = getattr(torch.ops.pdfsolve, f"{op}_backward")

    def setup_context(ctx, inputs, output):
        ctx.is_tensor = [isinstance(v, torch.Tensor) for v in inputs]
        ctx.save_for_backward(*(v for v in inputs if isinstance(v, torch.Tensor)))
        ctx.others = [v for v in inputs if not isinstance(v, torch.Tensor)]

    def backward(ctx, grad):
        n = len(ctx.is_tensor)
        if not ctx.needs_input_grad[0]:
            return (None,) * n
        tensors, others = iter(ctx.saved_tensors), iter(ctx.others)
        inputs = [next(tensors) if is_tensor else next(others) for is_tensor in ctx.is_tensor]
        return (backward_op(grad.contiguous(), *inputs),) + (None,) * (n - 1)

    torch.library.register_autograd(f"pdfsolve::{op}", backward, setup_context=setup_context)


def _register() -> None:
    """Autograd and fake kernels of the compiled ops (only when the extension defines them)."""

    # ---- debye_partials -----------------------------------------------------------------------------
    def debye_setup_context(ctx, inputs, output):
        pos, species, uiso, *params = inputs
        ctx.save_for_backward(pos, species, uiso)
        ctx.params = tuple(params)

    def debye_backward(ctx, grad):
        pos, species, uiso = ctx.saved_tensors
        gpos, guiso = torch.ops.pdfsolve.debye_partials_backward(grad, pos, species, uiso, *ctx.params)
        return (gpos, None, guiso) + (None,) * len(ctx.params)

    torch.library.register_autograd("pdfsolve::debye_partials", debye_backward, setup_context=debye_setup_context)

    @torch.library.register_fake("pdfsolve::debye_partials")
    def _(pos, species, uiso, n_species, q0, qstep, nq, rcut, delta1, delta2, qbroad):
        torch._check(pos.dim() == 3, lambda: "pos must have shape (B, N, 3)")
        return pos.new_empty((pos.shape[0], n_species * n_species, nq))

    @torch.library.register_fake("pdfsolve::debye_partials_backward")
    def _(grad, pos, species, uiso, n_species, q0, qstep, nq, rcut, delta1, delta2, qbroad):
        torch._check(pos.dim() == 3, lambda: "pos must have shape (B, N, 3)")
        return pos.new_empty(pos.shape), uiso.new_empty(uiso.shape)

    # ---- pair_histogram -----------------------------------------------------------------------------
    register_pos_backward("pair_histogram")

    @torch.library.register_fake("pdfsolve::pair_histogram")
    def _(pos, species, n_species, bin_width, nbins):
        torch._check(pos.dim() == 3, lambda: "pos must have shape (B, N, 3)")
        return pos.new_empty((pos.shape[0], n_species * n_species, nbins))

    @torch.library.register_fake("pdfsolve::pair_histogram_backward")
    def _(grad, pos, species, n_species, bin_width, nbins):
        torch._check(pos.dim() == 3, lambda: "pos must have shape (B, N, 3)")
        return pos.new_empty(pos.shape)


if _EXT_OK:
    _register()


def debye_partials(pos: torch.Tensor, species: torch.Tensor, uiso: torch.Tensor, n_species: int, q0: float,
                   qstep: float, nq: int, rcut: float, delta1: float = 0.0, delta2: float = 0.0,
                   qbroad: float = 0.0) -> torch.Tensor:
    """Debye sums per species pair, shape (B, n_species**2, nq), differentiable in ``pos`` and ``uiso``.

    Parameters
    ----------
    pos : (B, N, 3) float32/float64 tensor, atom positions in Angstrom.
    species : (B, N) int64 tensor, species index in ``[0, n_species)``, ``-1`` for a padding slot.
    uiso : (B, N) tensor of ``pos``'s dtype, isotropic displacement U_iso in Angstrom^2.
    n_species : number of species S.
    q0, qstep : first Q point and Q spacing in 1/Angstrom (Q_k = q0 + k qstep), ``nq`` points.
    rcut : pairs farther apart than ``rcut`` (Angstrom) are left out.
    delta1 (Angstrom), delta2 (Angstrom^2), qbroad (1/Angstrom) : Jeong peak-width parameters.

    Returns ``out[b, s*S+t, k]`` (s <= t; slots with s > t are zero) =
    sum over pairs i<j of species {s, t}, 0 < r_ij <= rcut, of
    exp(-0.5 (U_i + U_j) c(r_ij) Q_k^2) sin(Q_k r_ij) / r_ij  (units 1/Angstrom);
    see :func:`pdfsolve.ops.reference.debye_partials` for the full definition.
    """
    args = (int(n_species), float(q0), float(qstep), int(nq), float(rcut), float(delta1), float(delta2),
            float(qbroad))
    if use_compiled("debye_partials", pos.device):
        return torch.ops.pdfsolve.debye_partials(pos, species, uiso, *args)
    return reference.debye_partials(pos, species, uiso, *args)


def pair_histogram(pos: torch.Tensor, species: torch.Tensor, n_species: int, bin_width: float,
                   nbins: int) -> torch.Tensor:
    """Pair-distance histograms per species pair with linear two-bin splatting, shape (B, n_species**2, nbins).

    Parameters
    ----------
    pos : (B, N, 3) float32/float64 tensor, atom positions in Angstrom (differentiable).
    species : (B, N) int64 tensor, species index in ``[0, n_species)``, ``-1`` for a padding slot.
    n_species : number of species S.
    bin_width : bin width in Angstrom; bin k stands for the distance k * bin_width.
    nbins : number of bins; pairs with r >= (nbins - 1) * bin_width are dropped.

    A pair at x = r / bin_width adds 1 - (x - floor(x)) to bin floor(x) and x - floor(x) to the next bin of
    slot s*S+t (s <= t); see :func:`pdfsolve.ops.reference.pair_histogram`.
    """
    args = (int(n_species), float(bin_width), int(nbins))
    if use_compiled("pair_histogram", pos.device):
        return torch.ops.pdfsolve.pair_histogram(pos, species, *args)
    return reference.pair_histogram(pos, species, *args)
