"""evaluate_mining on a tiny library: the keys it reports, and exact recovery of noise-free targets."""
import pytest

from pdfsolve.evaluate import evaluate_mining
from pdfsolve.structures import build_library


@pytest.fixture(scope="module")
def tiny():
    return build_library(["Au"], min_atoms=20, max_atoms=40, stacking_layers=0)


def test_noise_free_targets_are_found_at_rank_1(tiny):
    result = evaluate_mining(tiny, n_targets=2, seed=1, rattle=0.0, noise=0.0)
    for key in ("n_targets", "top1", "top5", "top1_motif", "mean_rwp", "median_rwp", "per_motif", "seconds",
                "results"):
        assert key in result
    assert result["n_targets"] == len(result["results"]) == 2
    assert result["top1"] == result["top5"] == result["top1_motif"] == 1.0
    assert result["mean_rwp"] < 0.02
    for row in result["results"]:
        assert row["rank"] == 1 and (row["best_motif"], row["best_n_atoms"]) == (row["motif"], row["n_atoms"])
        assert 20.0 <= row["drawn"]["qmax"] <= 26.0 and 0.98 <= row["drawn"]["expansion"] <= 1.02


def test_rattle_and_noise_raise_rwp_and_bad_arguments(tiny):
    result = evaluate_mining(tiny, n_targets=1, seed=1, targets=tiny[:5])
    assert result["mean_rwp"] > 0.05 and result["results"][0]["rank"] is not None
    with pytest.raises(ValueError):
        evaluate_mining([], n_targets=1)
    with pytest.raises(ValueError):
        evaluate_mining(tiny, n_targets=0)
