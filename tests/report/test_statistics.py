"""Paired comparisons, the verdict rule, fitted temperatures and the teacher's independence."""

import numpy as np
import pytest
from scipy import stats

from mta4dpr_core.config.errors import ParamsError
from mta4dpr_core.config.independence import check_independence, check_student_independence, model_family
from mta4dpr_core.method.temperature import fit_temperature
from mta4dpr_core.report.statistics import (
    RESAMPLES,
    STABILITY_SEEDS,
    Comparison,
    bootstrap_effects,
    compare,
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


FAST = {"resamples": 4000, "stability_seeds": 3}  # the rule's plumbing; RESAMPLES itself is tested below


def test_compare_pairs_by_seed_and_query():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, size=(5, 200))
    better = base + 0.05 + rng.normal(0, 0.02, size=base.shape)
    result = compare(better, base, **FAST)
    assert result.verdict == "confirmed" and result.seeds == 5 and result.queries == 200 and result.seeds_holding == 5
    assert result.low < 0.05 < result.high and result.p < 0.001 and result.seed_level
    assert len(result.per_seed) == 5 and result.seed_std == pytest.approx(np.std(result.per_seed, ddof=1))
    assert compare(base, better, **FAST).verdict == "contradicted"
    noise = base + rng.normal(0, 0.05, size=base.shape)
    assert compare(noise, base, **FAST).verdict == "inconclusive"
    # lower is better (a divergence): a smaller value confirms
    assert compare(base, better, higher_is_better=False, **FAST).verdict == "confirmed"


def test_bootstrap_effects_are_the_two_level_resampling():
    """effect_b = u_b @ d @ v_b / (S Q) equals the mean of d over the resampled seeds x resampled queries."""
    from mta4dpr_core.report.statistics import _indices

    rng = np.random.default_rng(2)
    diffs = [rng.normal(size=(3, 7)), rng.normal(size=(1, 7)), rng.normal(size=(2, 5))]
    effects = bootstrap_effects(diffs, 500, generator_seed=4)
    for d, e in zip(diffs, effects):
        s, q = d.shape
        seeds = np.concatenate(list(_indices(s, 500, 4, 0))).astype(int) if s > 1 else np.zeros((500, 1), int)
        queries = np.concatenate(list(_indices(q, 500, 4, 1))).astype(int)
        explicit = np.array([d[np.ix_(seeds[b], queries[b])].mean() for b in range(500)])
        assert np.abs(explicit - e).max() < 1e-6
    # common random numbers: a comparison gets the same resamples alone or in a batch
    assert np.array_equal(bootstrap_effects(diffs[:1], 500, 4)[0], effects[0])


def test_p_value_and_interval_agree():
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.01, 0.02, 0.04):
        d = shift + rng.normal(0, 0.002, size=(5, 1)) + rng.normal(0, 0.15, size=(5, 300))
        result = compare(d, np.zeros_like(d), resamples=20000, stability_seeds=1)
        outside = result.low > 0 or result.high < 0
        assert outside == (result.p < 0.05) or abs(result.p - 0.05) < 0.003


def test_one_seed_is_a_query_bootstrap():
    """One seed on both sides: the seed level is degenerate and the interval is the query-level percentile bootstrap."""
    rng = np.random.default_rng(4)
    a, b = rng.uniform(size=(1, 300)), rng.uniform(size=(1, 300))
    result = compare(a, b, resamples=20000, stability_seeds=1)
    assert not result.seed_level and result.seeds == 1 and np.isnan(result.seed_std)
    reference = stats.bootstrap(
        ((a - b)[0],), np.mean, method="percentile", n_resamples=20000, random_state=np.random.default_rng(0)
    )
    assert result.low == pytest.approx(reference.confidence_interval.low, abs=0.003)
    assert result.high == pytest.approx(reference.confidence_interval.high, abs=0.003)
    # a fixed scorer (one row) against seeded runs is paired with every seed: the seed level is the runs'
    runs = a + rng.normal(0, 0.05, size=(4, 300))
    broadcast = compare(runs, b, **FAST)
    assert broadcast.seed_level and broadcast.seeds == 4


def test_holm():
    assert list(holm([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])
    assert list(holm([0.5, 0.001, 0.2, 0.02])) == pytest.approx([0.5, 0.004, 0.4, 0.06])
    assert holm([0.9, 0.9]).max() <= 1.0 and len(holm([])) == 0


def test_family_verdicts_apply_holm_and_mark_what_flips_as_borderline():
    def claim(p_draws, effect=0.01):
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
            p=p_draws[0],
            draws={"p": np.asarray(p_draws)},
        )

    family = family_verdicts([claim([0.001, 0.001]), claim([0.02, 0.02]), claim([0.5, 0.5], effect=-0.01)])
    assert [c.verdict for c in family] == ["confirmed", "confirmed", "inconclusive"]
    assert [c.p_holm for c in family] == pytest.approx([0.003, 0.04, 0.5])
    # raw p 0.03 and 0.04 would each confirm alone; in a family of three Holm makes both 0.06
    family = family_verdicts([claim([0.001]), claim([0.03]), claim([0.04])])
    assert [c.verdict for c in family] == ["confirmed", "inconclusive", "inconclusive"]
    assert [c.p_holm for c in family] == pytest.approx([0.003, 0.06, 0.06])
    assert [c.verdict for c in family_verdicts([claim([0.03]), claim([0.04])], adjust=False)] == [
        "confirmed",
        "confirmed",
    ]
    # a verdict that differs between generator seeds is borderline
    assert family_verdicts([claim([0.04, 0.06])])[0].verdict == "borderline"
    assert family_verdicts([claim([0.001, 0.001], effect=-0.02)])[0].verdict == "contradicted"
    assert decide(0.01, 0.0) == "inconclusive" and decide(float("nan"), 1.0) == "inconclusive"


@pytest.fixture(scope="module")
def on_the_edge():
    """Realistic per-query nDCG differences (5 seeds x 300 queries, sd ~0.2) shifted so that the first generator
    seed's lower bound is 0: the verdict then rests on Monte Carlo noise alone. The full rule (RESAMPLES, 20 seeds)."""
    rng = np.random.default_rng(17)
    d = (
        0.01
        + rng.normal(0, 0.01, size=(5, 1))
        + rng.normal(0, 0.14, size=(1, 300))
        + rng.normal(0, 0.14, size=(5, 300))
    )
    low = np.quantile(bootstrap_effects([d], RESAMPLES, 0)[0], 0.025)
    d = d - low
    return d, compare(d, np.zeros_like(d))


def test_interval_bounds_are_stable_across_generator_seeds(on_the_edge):
    d, result = on_the_edge
    assert 0.18 < d.std() < 0.22 and result.resamples == RESAMPLES and len(result.draws["low"]) == STABILITY_SEEDS == 20
    # each bound moves by less than 0.05 points (0.0005 on the 0-1 scale) across the 20 generator seeds
    assert np.ptp(result.draws["low"]) < 0.0005 and np.ptp(result.draws["high"]) < 0.0005
    assert result.bound_spread < 0.0005
    assert abs(result.low) < 1e-6  # the first generator seed is the one reported


def test_a_verdict_that_flips_between_generator_seeds_is_borderline(on_the_edge):
    _, result = on_the_edge
    assert (result.draws["low"] > 0).any() and (result.draws["low"] <= 0).any()
    assert result.verdict == "borderline"


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
