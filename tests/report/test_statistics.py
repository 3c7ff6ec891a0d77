"""Paired comparisons, the verdict rule, fitted temperatures and the teacher's independence."""

import numpy as np
import pytest
from scipy import stats

from mta4dpr_core.config.errors import ParamsError
from mta4dpr_core.config.independence import check_independence, check_student_independence, model_family
from mta4dpr_core.method.temperature import fit_temperature
from mta4dpr_core.report.statistics import (
    SEED_VARIANCE_BOUND,
    Comparison,
    bootstrap_effects,
    compare,
    crossed_t,
    decide,
    family_verdicts,
    holm,
    mean_and_sample_std,
    paired_interval,
    verdict,
)


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
    reference = stats.bootstrap(
        (d,), np.mean, method="percentile", n_resamples=5000, random_state=np.random.default_rng(1)
    )
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
    assert result.low < 0.05 < result.high and result.p < 0.001 and result.seed_level
    assert len(result.per_seed) == 5 and result.seed_std == pytest.approx(np.std(result.per_seed, ddof=1))
    assert compare(base, better).verdict == "contradicted"
    noise = base + rng.normal(0, 0.05, size=base.shape)
    assert compare(noise, base).verdict == "inconclusive"
    # lower is better (a divergence): a smaller value confirms
    assert compare(base, better, higher_is_better=False).verdict == "confirmed"


def test_crossed_t_by_hand():
    """se^2 = var(seed means) / S + var(query means) / Q; df = Satterthwaite's with the seed part at its upper bound."""
    rng = np.random.default_rng(2)
    d = rng.normal(0.01, 0.1, size=(4, 50)) + rng.normal(0, 0.02, size=(4, 1))
    effect, low, high, p, se, df = crossed_t(d)
    v_seed, v_query = d.mean(1).var(ddof=1) / 4, d.mean(0).var(ddof=1) / 50
    assert se == pytest.approx(np.sqrt(v_seed + v_query))
    upper = v_seed * 3 / stats.chi2.ppf(1 - SEED_VARIANCE_BOUND, 3)
    assert df == pytest.approx((upper + v_query) ** 2 / (upper**2 / 3 + v_query**2 / 49))
    assert high - effect == pytest.approx(stats.t.ppf(0.975, df) * se)
    assert p == pytest.approx(2 * stats.t.sf(abs(effect) / se, df))
    # more seed spread, fewer degrees of freedom: never more than the queries', never fewer than the seeds'
    assert 3 <= df <= 49


def test_p_value_and_interval_agree():
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.01, 0.02, 0.04):
        d = shift + rng.normal(0, 0.002, size=(5, 1)) + rng.normal(0, 0.15, size=(5, 300))
        result = compare(d, np.zeros_like(d))
        outside = result.low > 0 or result.high < 0
        assert outside == (result.p < 0.05)


def test_one_seed_is_a_query_t_interval():
    """One seed on both sides: no seed part, and the interval is the one-sample t over queries."""
    rng = np.random.default_rng(4)
    a, b = rng.uniform(size=(1, 300)), rng.uniform(size=(1, 300))
    result = compare(a, b)
    assert not result.seed_level and result.seeds == 1 and np.isnan(result.seed_std)
    reference = stats.ttest_1samp((a - b)[0], 0.0).confidence_interval(0.95)
    assert result.low == pytest.approx(reference.low) and result.high == pytest.approx(reference.high)
    # a fixed scorer (one row) against seeded runs is paired with every seed: the seed part is the runs'
    runs = a + rng.normal(0, 0.05, size=(4, 300))
    broadcast = compare(runs, b)
    assert broadcast.seed_level and broadcast.seeds == 4


def test_seeds_that_disagree_widen_the_interval():
    """Seed effects +x, -x, +x with tiny query noise: the mean is +x/3 and every query agrees with it, so a t over the
    queries alone would confirm. The seed part keeps the verdict inconclusive."""
    rng = np.random.default_rng(5)
    d = 0.03 * np.array([1, -1, 1.0])[:, None] + rng.normal(0, 0.001, size=(3, 300))
    assert stats.ttest_1samp(d.mean(0), 0.0).pvalue < 1e-6
    result = compare(d, np.zeros_like(d))
    assert result.verdict == "inconclusive" and result.low < 0 < result.high and result.df < 3


def test_no_spread_is_a_point():
    effect, low, high, p, se, _ = crossed_t(np.full((3, 10), 0.02))
    assert (effect, low, high, se) == pytest.approx((0.02, 0.02, 0.02, 0.0)) and p == 0.0


def test_holm():
    assert list(holm([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])
    assert list(holm([0.5, 0.001, 0.2, 0.02])) == pytest.approx([0.5, 0.004, 0.4, 0.06])
    assert holm([0.9, 0.9]).max() <= 1.0 and len(holm([])) == 0


def test_family_verdicts_apply_holm():
    def claim(p, effect=0.01):
        return Comparison(
            ours=0.5,
            other=0.5 - effect,
            effect=effect,
            low=0.0,
            high=0.0,
            seed_std=0.0,
            seeds_holding=5,
            seeds=5,
            queries=300,
            verdict="",
            p=p,
        )

    family = family_verdicts([claim(0.001), claim(0.02), claim(0.5, effect=-0.01)])
    assert [c.verdict for c in family] == ["confirmed", "confirmed", "inconclusive"]
    assert [c.p_holm for c in family] == pytest.approx([0.003, 0.04, 0.5])
    # raw p 0.03 and 0.04 would each confirm alone; in a family of three Holm makes both 0.06
    family = family_verdicts([claim(0.001), claim(0.03), claim(0.04)])
    assert [c.verdict for c in family] == ["confirmed", "inconclusive", "inconclusive"]
    assert [c.p_holm for c in family] == pytest.approx([0.003, 0.06, 0.06])
    assert [c.verdict for c in family_verdicts([claim(0.03), claim(0.04)], adjust=False)] == ["confirmed", "confirmed"]
    assert family_verdicts([claim(0.001, effect=-0.02)])[0].verdict == "contradicted"
    assert decide(0.01, 0.0) == "inconclusive" and decide(float("nan"), 1.0) == "inconclusive"


def test_bootstrap_effects_are_the_two_level_resampling():
    """The rule before (kept for the coverage comparison): effect_b is the mean of d over resampled seeds x queries."""
    from mta4dpr_core.report.statistics import _indices

    rng = np.random.default_rng(2)
    for d in (rng.normal(size=(3, 7)), rng.normal(size=(1, 7))):
        effects = bootstrap_effects(d, 500, generator_seed=4)
        s, q = d.shape
        seeds = np.concatenate(list(_indices(s, 500, 4, 0))).astype(int) if s > 1 else np.zeros((500, 1), int)
        queries = np.concatenate(list(_indices(q, 500, 4, 1))).astype(int)
        explicit = np.array([d[np.ix_(seeds[b], queries[b])].mean() for b in range(500)])
        assert np.abs(explicit - effects).max() < 1e-9


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
        {"kind": "hf", "model": "sentence-transformers/all-MiniLM-L6-v2"}
    )
    teacher = {"kind": "ensemble", "members": [{"kind": "bm25"}, {"kind": "hf", "model": "all-MiniLM-L6-v2"}]}
    check_independence(teacher, [{"name": "l3", "kind": "onnx", "model": "paraphrase-MiniLM-L3-v2"}])
    with pytest.raises(ParamsError, match=r"models.assistants\[1\].*shares"):
        check_independence(
            teacher,
            [
                {"name": "l3", "kind": "onnx", "model": "paraphrase-MiniLM-L3-v2"},
                {"name": "m2v", "kind": "static", "model": "model2vec:all-MiniLM-L6-v2"},
            ],
        )
    with pytest.raises(ParamsError, match=r"models.assistants\[0\].*bm25"):
        check_independence(teacher, [{"name": "bm25", "kind": "bm25"}])


def test_a_profile_with_a_dependent_teacher_is_rejected():
    from mta4dpr_core.config.params import from_mapping, load_params, profile_path

    params = load_params(profile_path("mini"))
    given = {
        "models": {
            **params["models"],
            "assistants": params["models"]["assistants"] + [{"name": "bm25", "kind": "bm25"}],
        }
    }
    with pytest.raises(ParamsError, match="shares"):
        from_mapping(given)
    given["models"]["independent_teacher"] = False
    from_mapping(given)


def test_no_assistant_may_be_the_students_starting_model():
    """A copy, a layer cut, a smaller dim, a model2vec distillation, a declared derivation and the warm-start
    target all count as the student's starting model."""
    student = {"kind": "hf", "model": "all-MiniLM-L6-v2", "num_layers": 3}
    independent = [
        {"name": "l3", "kind": "onnx", "model": "paraphrase-MiniLM-L3-v2"},
        {"name": "wl", "kind": "static", "model": "wordllama"},
    ]
    check_student_independence(student, independent)
    for index, assistant in [
        (0, {"name": "l6", "kind": "hf", "model": "sentence-transformers/all-MiniLM-L6-v2"}),
        (1, {"name": "m2v", "kind": "static", "model": "model2vec:all-MiniLM-L6-v2"}),
        (0, {"name": "local", "kind": "hf", "model": "/models/ft", "derived_from": ["all-MiniLM-L6-v2"]}),
    ]:
        assistants = independent[:index] + [assistant] + independent[index:]
        with pytest.raises(ParamsError, match=rf"models.assistants\[{index}\].*{assistant['name']}.*starting model"):
            check_student_independence(student, assistants)
    static = {"kind": "static", "model": "wordllama", "dim": 64}
    with pytest.raises(ParamsError, match=r"models.assistants\[1\].*'wl'"):
        check_student_independence(static, independent)
    warm = {**student, "model": "/models/other", "warm_start": {"target": "paraphrase-MiniLM-L3-v2"}}
    with pytest.raises(ParamsError, match=r"warm_start.target.*'l3'"):
        check_student_independence(warm, independent)


@pytest.mark.parametrize(
    "profile", ["smoke", "mini", "mini_transformer", "nfcorpus", "paper_tiny", "paper_msmarco", "paper_nq"]
)
def test_every_committed_profile_has_an_independent_student(profile):
    from mta4dpr_core.config.params import load_params, profile_path

    params = load_params(profile_path(profile))  # validation runs the check
    assert params["models"]["independent_student"] is True


def test_a_profile_whose_assistant_is_the_student_is_rejected():
    from mta4dpr_core.config.params import from_mapping, load_params, profile_path

    params = load_params(profile_path("mini"))
    wordllama = {"name": "wordllama", "kind": "static", "model": "wordllama"}
    given = {"models": {**params["models"], "assistants": params["models"]["assistants"] + [wordllama]}}
    with pytest.raises(ParamsError, match=r"models.assistants\[2\].*'wordllama'.*starting model"):
        from_mapping(given)
    given["models"]["independent_student"] = False
    from_mapping(given)
    sizes = {
        "models": params["models"],
        "study": {"student_sizes": [{"kind": "hf", "model": "all-MiniLM-L6-v2", "num_layers": 2}]},
    }
    with pytest.raises(ParamsError, match=r"study.student_sizes\[0\]"):
        from_mapping(sizes)


def test_scorers_with_one_name_but_different_specs_never_share_stored_scores():
    """A changed teacher keeps its name ("teacher"); its stored pair scores must not be reused."""
    from mta4dpr_core.retrieval.scorers import build_scorer

    first = build_scorer({"name": "teacher", "kind": "bm25"})
    second = build_scorer({"name": "teacher", "kind": "bm25", "temperature": 2.0})
    assert first.name == second.name and first.identity_digest != second.identity_digest
    assert build_scorer({"name": "teacher", "kind": "bm25"}).identity_digest == first.identity_digest
