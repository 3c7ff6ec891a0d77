"""The interval rule's coverage, simulated on null data at the profiles' seed spread (the check the rule was chosen by).

The design is the measured one (``tools/coverage_simulation.py``): 300 test queries, the mini headline's query and
noise sds (0.08, 0.085 on the 0-1 scale), and the largest seed sd measured in a profile's claims, 2.5 nDCG@10 points
(mini_transformer, 3 seeds). The test fails when the rule's coverage drops below 93% or its family-wise rate of false
significant verdicts (15 null claims, Holm) rises above 5% plus Monte Carlo slack; the rule used before fails it.
"""

from __future__ import annotations

import pytest

from mta4dpr_core.report.statistics import simulate_coverage

DESIGN = {"query_sd": 0.08, "noise_sd": 0.085, "queries": 300, "family": 15}


@pytest.mark.parametrize("seeds", [3, 5])
@pytest.mark.parametrize("seed_sd", [0.005, 0.025])
def test_the_t_rule_covers_at_the_measured_seed_spread(seeds, seed_sd):
    result = simulate_coverage("t", seeds, seed_sd, trials=200, rng_seed=seeds, **DESIGN)
    print(result)
    assert result.coverage >= 0.93
    # 200 families: a rate of 5% has a Monte Carlo sd of 1.5%
    assert result.family_false_significant <= 0.08


def test_the_bootstrap_used_before_fails_the_same_check():
    """The two-level percentile bootstrap resamples 3 seeds as if they were the population: under the coverage bar."""
    result = simulate_coverage("bootstrap", 3, 0.025, trials=60, resamples=1000, rng_seed=3, **DESIGN)
    print(result)
    assert result.coverage < 0.93
