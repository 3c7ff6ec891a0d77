"""Paired comparisons, the verdict rule, fitted temperatures and the teacher's independence."""
import numpy as np
import pytest
from scipy import stats

from mta4dpr_core.errors import ParamsError
from mta4dpr_core.statistics import compare, mean_and_sample_std, paired_interval, verdict
from mta4dpr_core.teacher_choice import check_independence, model_family
from mta4dpr_core.temperature import fit_temperature


def test_verdict_rule():
    assert verdict(0.1, 0.5) == "confirmed"
    assert verdict(-0.5, -0.1) == "contradicted"
    assert verdict(-0.1, 0.5) == "inconclusive"
    assert verdict(-0.5, -0.1, higher_is_better=False) == "confirmed"
    assert verdict(float("nan"), 1.0) == "inconclusive"


def test_interval_matches_scipy_percentile_and_covers_the_mean():
    rng = np.random.default_rng(0)
    d = rng.normal(0.02, 0.1, size=300)
    low, high = paired_interval(d)
    assert low < d.mean() < high
    reference = stats.bootstrap((d,), np.mean, method="percentile", n_resamples=5000, random_state=np.random.default_rng(1))
    assert low == pytest.approx(reference.confidence_interval.low, abs=0.004)
    assert high == pytest.approx(reference.confidence_interval.high, abs=0.004)
    # the normal-theory interval agrees for a mean of 300 values
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    assert (high - low) == pytest.approx(2 * half, rel=0.1)


def test_compare_pairs_by_seed_and_query():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, size=(5, 200))
    better = base + 0.05 + rng.normal(0, 0.02, size=base.shape)
    result = compare(better, base)
    assert result.verdict == "confirmed" and result.seeds == 5 and result.queries == 200 and result.seeds_holding == 5
    assert result.low < 0.05 < result.high
    assert compare(base, better).verdict == "contradicted"
    noise = base + rng.normal(0, 0.05, size=base.shape)
    assert compare(noise, base).verdict == "inconclusive"


def test_compare_needs_the_same_queries():
    with pytest.raises(ValueError, match="same queries"):
        compare(np.zeros((2, 3)), np.zeros((2, 4)))


def test_sample_std():
    mean, std = mean_and_sample_std([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == pytest.approx(1.0)  # ddof=1, not the population 0.816
    assert np.isnan(mean_and_sample_std([1.0])[1])


def test_fit_temperature_kl_recovers_a_scaled_teacher():
    rng = np.random.default_rng(0)
    teacher = rng.normal(size=(50, 12))
    assert fit_temperature(teacher, teacher * 0.2, "kl") == pytest.approx(0.2, rel=1e-3)
    assert fit_temperature(teacher, teacher * 5.0, "entropy") == pytest.approx(5.0, rel=1e-2)
    mask = np.ones_like(teacher, dtype=bool)
    mask[:, -2:] = False  # padding left out
    assert fit_temperature(teacher, teacher * 0.2, "kl", mask=mask) == pytest.approx(0.2, rel=1e-3)


def test_model2vec_distillation_counts_as_its_source():
    assert model_family({"kind": "static", "model": "model2vec:all-MiniLM-L6-v2"}) == model_family(
        {"kind": "hf", "model": "sentence-transformers/all-MiniLM-L6-v2"})
    teacher = {"kind": "ensemble", "members": [{"kind": "bm25"}, {"kind": "hf", "model": "all-MiniLM-L6-v2"}]}
    check_independence(teacher, [{"name": "l3", "kind": "onnx", "model": "paraphrase-MiniLM-L3-v2"}])
    with pytest.raises(ParamsError, match=r"models.assistants\[1\].*shares"):
        check_independence(teacher, [{"name": "l3", "kind": "onnx", "model": "paraphrase-MiniLM-L3-v2"},
                                     {"name": "m2v", "kind": "static", "model": "model2vec:all-MiniLM-L6-v2"}])
    with pytest.raises(ParamsError, match=r"models.assistants\[0\].*bm25"):
        check_independence(teacher, [{"name": "bm25", "kind": "bm25"}])


def test_a_profile_with_a_dependent_teacher_is_rejected():
    from mta4dpr_core.params import from_mapping, load_params, profile_path

    params = load_params(profile_path("mini"))
    given = {"models": {**params["models"], "assistants": params["models"]["assistants"] + [{"name": "bm25", "kind": "bm25"}]}}
    with pytest.raises(ParamsError, match="shares"):
        from_mapping(given)
    given["models"]["independent_teacher"] = False
    from_mapping(given)


def test_scorers_with_one_name_but_different_specs_never_share_stored_scores():
    """A changed teacher keeps its name ("teacher"); its stored pair scores must not be reused."""
    from mta4dpr_core.scorers import build_scorer

    first = build_scorer({"name": "teacher", "kind": "bm25"})
    second = build_scorer({"name": "teacher", "kind": "bm25", "temperature": 2.0})
    assert first.name == second.name and first.identity_digest != second.identity_digest
    assert build_scorer({"name": "teacher", "kind": "bm25"}).identity_digest == first.identity_digest
