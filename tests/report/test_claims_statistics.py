"""The claims' statistics on synthetic per-query data with known answers, the paper's effect beside ours
(effect ratio and ΔRI against the repro_eval library), and the claims table and FINDINGS on a synthetic profile.

Synthetic differences follow the mini profile's structure (per-(seed, query) nDCG@10 differences, 0-1 scale):
a seed effect (sd 0.005), a query effect (sd 0.1) and noise (sd 0.1), 5 seeds x 300 queries.
"""

from __future__ import annotations

import types
import zlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mta4dpr_core.config.typed import typed
from mta4dpr_core.report import paper as P
from mta4dpr_core.report import tables as T
from mta4dpr_core.report.statistics import (
    compare,
    compare_many,
    delta_relative_improvement,
    effect_ratio,
    family_verdicts,
)

SEEDS, QUERIES = 5, 300


def synthetic(rng, effect=0.0, seed_sd=0.005, query_sd=0.1, noise_sd=0.1):
    return (
        effect
        + rng.normal(0, seed_sd, size=(SEEDS, 1))
        + rng.normal(0, query_sd, size=(1, QUERIES))
        + rng.normal(0, noise_sd, size=(SEEDS, QUERIES))
    )


def family(diffs, **kwargs):
    return family_verdicts(compare_many([(d, np.zeros_like(d)) for d in diffs], **kwargs))


def test_a_planted_effect_is_confirmed_in_a_family_of_15():
    rng = np.random.default_rng(0)
    diffs = [synthetic(rng, effect=0.03)] + [synthetic(rng) for _ in range(14)]
    verdicts = family(diffs)
    assert verdicts[0].verdict == "confirmed" and verdicts[0].p_holm < 0.05
    assert verdicts[0].low < 0.03 < verdicts[0].high and verdicts[0].seeds_holding == SEEDS
    assert all(v.verdict != "confirmed" for v in verdicts[1:])
    # the same effect the other way is contradicted
    assert family([-diffs[0]] + diffs[1:])[0].verdict == "contradicted"


def test_under_no_effect_a_family_of_15_rarely_confirms_anything():
    """200 simulated profiles, 15 null claims each: the share with at least one false *confirmed* is at most
    about 5% (Holm controls the family-wise error)."""
    rng = np.random.default_rng(2024)
    simulations, confirmed, either = 200, 0, 0
    for _i in range(simulations):
        verdicts = [v.verdict for v in family([synthetic(rng) for _ in range(15)])]
        confirmed += "confirmed" in verdicts
        either += "confirmed" in verdicts or "contradicted" in verdicts
    rate = confirmed / simulations
    print(
        f"null family of 15: at least one false confirmed in {rate:.1%} of {simulations} simulations "
        f"(confirmed or contradicted: {either / simulations:.1%})"
    )
    assert rate <= 0.05
    assert either / simulations <= 0.08


def test_seeds_that_disagree_are_not_confirmed_on_query_variance_alone():
    """Seed effects +x, -x, +x, -x, +x with tiny query noise: the mean is +x/5 and every query agrees with it,
    so a bootstrap over queries of the seed-averaged differences confirms. The t over seeds x queries does not."""
    rng = np.random.default_rng(1)
    x = 0.03
    d = x * np.array([1, -1, 1, -1, 1.0])[:, None] + rng.normal(0, 0.001, size=(SEEDS, QUERIES))
    queries_only = stats.bootstrap(
        (d.mean(0),), np.mean, method="percentile", n_resamples=5000, random_state=np.random.default_rng(0)
    )
    assert queries_only.confidence_interval.low > 0  # the old rule: confirmed
    result = compare(d, np.zeros_like(d))
    assert result.verdict != "confirmed" and result.low < 0 < result.high and result.p > 0.2
    assert result.seeds_holding == 3


# ---- the paper's effect beside ours: repro_eval's definitions -------------------------------------------------


def _write_trec(tmp_path, rng, topics=6, docs=25):
    qrels = tmp_path / "qrels.txt"
    with qrels.open("w") as f:
        for t in range(topics):
            for d in range(docs):
                f.write(f"{t + 1} 0 d{d} {int(rng.random() < 0.25) * rng.integers(1, 3)}\n")
    paths = {}
    for name, boost in [("orig_b", 0.0), ("orig_a", 0.6), ("rep_b", 0.0), ("rep_a", 0.3)]:
        path = tmp_path / f"{name}.txt"
        with path.open("w") as f:
            for t in range(topics):
                scores = rng.normal(size=docs) + boost * (np.arange(docs) % 4 == 0)
                for rank, d in enumerate(np.argsort(-scores)):
                    f.write(f"{t + 1} Q0 d{d} {rank + 1} {scores[d]:.6f} {name}\n")
        paths[name] = str(path)
    return str(qrels), paths


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # repro_eval divides by a zero improvement for some measures
def test_effect_ratio_and_delta_ri_agree_with_repro_eval(tmp_path):
    from repro_eval.Evaluator import RpdEvaluator

    rng = np.random.default_rng(7)
    qrels, paths = _write_trec(tmp_path, rng)
    rpd = RpdEvaluator(
        qrels_orig_path=qrels,
        run_b_orig_path=paths["orig_b"],
        run_a_orig_path=paths["orig_a"],
        run_b_rep_path=paths["rep_b"],
        run_a_rep_path=paths["rep_a"],
    )
    rpd.trim()
    rpd.evaluate()
    er, dri = rpd.er(), rpd.dri()
    checked = 0
    for measure in ("nDCG@10", "P@5", "RR", "AP"):
        if measure not in er:
            continue
        per_topic = {
            name: np.array([score[t][measure] for t in sorted(score)])
            for name, score in [
                ("orig_b", rpd.run_b_orig_score),
                ("orig_a", rpd.run_a_orig_score),
                ("rep_b", rpd.run_b_rep_score),
                ("rep_a", rpd.run_a_rep_score),
            ]
        }
        ours_delta = (per_topic["rep_a"] - per_topic["rep_b"]).mean()
        paper_delta = (per_topic["orig_a"] - per_topic["orig_b"]).mean()
        if paper_delta != 0:
            assert effect_ratio(ours_delta, paper_delta) == pytest.approx(er[measure], rel=1e-9)
            # in percent, as the claims table gives both sides: the ratio has no unit
            assert effect_ratio(100 * ours_delta, 100 * paper_delta) == pytest.approx(er[measure], rel=1e-9)
        assert delta_relative_improvement(
            per_topic["orig_a"].mean(), per_topic["orig_b"].mean(), per_topic["rep_a"].mean(), per_topic["rep_b"].mean()
        ) == pytest.approx(dri[measure], rel=1e-9, abs=1e-12)
        checked += 1
    assert checked >= 2
    assert np.isnan(effect_ratio(1.0, 0.0)) and np.isnan(effect_ratio(1.0, None))


def test_the_paper_numbers_are_data():
    assert T.paper_values("table3", "no_fusion") == {
        "paper MRR@10": 40.8,
        "paper R@50": 87.7,
        "paper R@1k": 98.7,
        "paper NQ R@5": 73.2,
        "paper NQ R@20": 83.4,
        "paper NQ R@100": 88.2,
    }
    assert T.paper_values("table4", "iteration-2", ("MRR@10", "NQ R@5")) == {"paper MRR@10": 40.7, "paper NQ R@5": 73.1}
    assert T.paper_values("table7", "none", ("MRR@10",)) == {"paper MRR@10": 39.9}
    assert T.paper_values("table2", "no-such-row", prefix="paper NQ ") == dict.fromkeys(
        ["paper NQ R@5", "paper NQ R@20", "paper NQ R@100"]
    )
    assert T.PAPER_LETTERS == ["C", "S", "R", "M"]
    assert (
        P.value("table6", "6-layers-768-d", "↑ R@50") == 1.6 and P.value("table9", "12-layers-768-d", "params M") == 110
    )
    assert P.claim_delta("mta4dpr-vs-no-assistant", "nDCG@10")["delta"] == pytest.approx(1.2)
    assert P.claim_delta("mta4dpr-vs-no-assistant", "R@1000")["column"] == "R@1k"
    assert P.claim_delta("kl-vs-rbo", "R@50")["delta"] == pytest.approx(0.5)
    assert P.claim_delta("iterations-x-assistants", "nDCG@10")["delta"] is None


# ---- the claims table and FINDINGS on a synthetic profile -------------------------------------------------------

METRICS = ("nDCG@10", "MRR@10", "R@50", "R@1000")
PLANTED = {"mta4dpr": 0.0, "no_assistants": 0.05, "one_iteration_kd": 0.05}  # MTA4DPR clearly below teacher-only KD


def _evaluation(rng, base, shift, query_ids):
    out = {}
    for k, metric in enumerate(METRICS):
        values = np.clip(base[k] + shift + rng.normal(0, 0.05, size=len(query_ids)), 0, 1)
        out[metric] = dict(zip(query_ids, values, strict=True))
    return {"per_query": {"test": out}}


@pytest.fixture()
def synthetic_setup(tmp_path, monkeypatch):
    from mta4dpr_core.config.params import load_params, profile_path
    from mta4dpr_core.report import claims as C
    from mta4dpr_core.report import studies as S

    def make(seeds):
        params = load_params(profile_path("mini"))
        params["seeds"] = seeds
        params["output"]["results_dir"] = str(tmp_path / "results")
        names = [a["name"] for a in params["models"]["assistants"]]
        query_ids = [f"q{i}" for i in range(120)]
        base = np.random.default_rng(0).uniform(0.2, 0.8, size=(len(METRICS), len(query_ids)))

        def runs(setup, variant="mta4dpr", seeds=None, **kwargs):
            key = (variant, tuple(kwargs.get("assistant_subset") or ()), str(kwargs.get("student_spec")))
            out = []
            for seed in seeds or params["seeds"]:
                rng = np.random.default_rng(zlib.crc32(repr((key, seed)).encode()))
                count = 3 if variant != "one_iteration_kd" and variant != "no_iterations" else 1
                history = [
                    types.SimpleNamespace(
                        test=_evaluation(rng, base, PLANTED.get(variant, 0.0) - 0.01 * (count - i - 1), query_ids)
                    )
                    for i in range(count)
                ]
                out.append(  # the attributes of a RunResult the claims read
                    types.SimpleNamespace(
                        seed=seed,
                        history=history,
                        final=history[-1].test,
                        initial=history[0].test,
                        selections=[{"select_seconds": 0.001, "step_seconds": 0.2}] * 10,
                    )
                )
            return out

        monkeypatch.setattr(S, "run_over_seeds", runs)
        # per_query.csv.gz reads the catalog's runs one by one, from the same synthetic store
        monkeypatch.setattr(
            C,
            "read_run",
            lambda setup, spec: runs(
                setup,
                spec.variant,
                [spec.seed],
                assistant_subset=spec.assistant_subset,
                student_spec=spec.student_spec,
            )[0],
        )
        members = [1, 1, 1, 2, 2, 2, 3]
        monkeypatch.setattr(
            S,
            "fusion_kl_per_query",
            lambda setup: (
                ["a", "b", "c", "a&b", "a&c", "b&c", "a&b&c"],
                members,
                np.random.default_rng(3).uniform(0.5, 0.7, size=(7, 80)),
            ),
        )
        monkeypatch.setattr(C, "_eval_split_quality", lambda setup: {n: float(i) for i, n in enumerate(names)})
        split = types.SimpleNamespace(query_ids=query_ids)
        return types.SimpleNamespace(
            params=params,
            config=typed(params),
            test=split,
            extra_tests={},
            assistants=[types.SimpleNamespace(name=n) for n in names],
        )

    return make


def test_claims_count_each_comparison_once_and_set_the_paper_beside_ours(synthetic_setup, tmp_path):
    from mta4dpr_core.report import claims as C

    setup = synthetic_setup([13, 42, 7, 1234, 99])  # 3 seeds leave ~2 df: a planted -5 points is not enough there
    table = C.check_claims(setup)
    for column in (
        "id",
        "claim",
        "table",
        "paper Δ",
        "paper table",
        "effect",
        "low",
        "high",
        "p",
        "p (Holm)",
        "verdict",
        "combination of",
        "effect ratio (MRR@10)",
        "ΔRI (MRR@10)",
        "effect ratio (nDCG@10 vs DL)",
        "seeds holding",
        "seeds",
    ):
        assert column in table.columns
    assert table["id"].is_unique
    quality = table[table["family"] == C.QUALITY]
    assistants = len(setup.params["models"]["assistants"])
    # 14 fixed comparisons, the two controls, one "alone beats none" per assistant and one "more assistants" step per
    # added assistant
    distinct = 16 + assistants + (assistants - 1)
    assert len(quality) == distinct
    headline = table.set_index("id").loc["mta4dpr-vs-no-assistant"]
    assert "table3" in headline["also in"] and "table6" in headline["also in"]
    assert headline["verdict"] == "contradicted" and headline["effect"] < 0
    # effect ratio on the paper's own metrics: our MRR@10 Δ over its MRR@10 Δ, our nDCG@10 Δ over its DL nDCG@10 Δ
    assert headline["paper Δ"] == pytest.approx(1.2) and headline["effect ratio (MRR@10)"] == pytest.approx(
        headline["ours MRR@10 Δ"] / 1.2
    )
    assert headline["paper DL nDCG@10 Δ"] == pytest.approx(2.7)  # (71.2 - 69.2 + 71.1 - 67.7) / 2, Table 1
    assert headline["effect ratio (nDCG@10 vs DL)"] == pytest.approx(headline["effect"] / 2.7)
    assert "metric mismatch" in headline["paper note"]
    # the paper's Δ below twice its rounding gives no ratio: kl-vs-rbo is 41.1 - 40.9 = 0.2 on MRR@10 (kept), and
    # iteration 2 to 3 is 0.4; removing fusion 0.3; every ratio present has a paper Δ of at least 0.2
    ratios = table[table["family"] == C.QUALITY]
    assert (ratios["paper Δ"].abs()[ratios["effect ratio (MRR@10)"].notna()] >= 0.2).all()
    # the controls are in the family, beside the paper's comparison
    assert {"mta4dpr-vs-kd-matched-weight", "mta4dpr-vs-assistants-are-teacher"} <= set(quality["id"])
    # declared linear combinations, checked on the data
    by_id = table.set_index("id")
    assert by_id.loc["mta4dpr-vs-one-iteration-kd", "combination of"] == (
        "mta4dpr-vs-no-assistant + iterations-teacher-only-kd"
    )
    assert by_id.loc["iterations-x-assistants", "combination of"] == "removing-iterations − iterations-teacher-only-kd"
    assert pd.isna(by_id.loc["mta4dpr-vs-no-assistant", "combination of"])
    assert "by number of assistants" in by_id.loc["more-assistants-2-vs-1", "paper note"]
    assert not any("removing assistants" in c for c in table["claim"])  # the same comparison, counted once
    assert {
        "iterations-teacher-only-kd",
        "iterations-x-assistants",
        "kl-best-selection",
        "every-single-assistant",
    } <= set(table["id"])
    composites = table[table["family"] == C.COMPOSITE]
    assert len(composites) == 2 and composites["effect"].isna().all()
    no_paper = table.set_index("id").loc["mta4dpr-vs-one-iteration-kd"]
    assert pd.isna(no_paper["paper Δ"]) and "no one-iteration" in no_paper["paper note"]
    secondary = pd.read_csv(tmp_path / "results" / "mini" / "claims_secondary.csv")
    assert len(secondary) == 3 * distinct and set(secondary["metric"]) == {"MRR@10 (%)", "R@50 (%)", "R@1k (%)"}

    findings = C.write_findings(setup, table)
    assert "Holm" in findings and "Satterthwaite" in findings and "borderline" not in findings
    independent = distinct - int(quality["combination of"].notna().sum())
    assert f"Summary: {distinct} comparisons on nDCG@10 ({independent} independent)" in findings
    assert "1 seeds" not in findings and independent < distinct
    assert "effect ratio" in findings and "ΔRI" in findings


def test_one_seed_findings_say_so(synthetic_setup):
    from mta4dpr_core.report import claims as C

    setup = synthetic_setup([13])
    findings = C.write_findings(setup, C.check_claims(setup))
    assert "over 1 seed [13]" in findings and "1 seeds" not in findings and "no seed part" in findings


def test_the_primary_metric_is_declared_in_the_profile():
    from mta4dpr_core.config.errors import ParamsError
    from mta4dpr_core.config.params import REPO_ROOT, from_mapping, load_params

    assert from_mapping({})["study"]["primary_metric"] == "nDCG@10"
    assert from_mapping({"study": {"primary_metric": "MRR@10"}})["study"]["primary_metric"] == "MRR@10"
    with pytest.raises(ParamsError, match="study.primary_metric"):
        from_mapping({"study": {"primary_metric": "nDCG@5"}})
    for path in sorted((REPO_ROOT / "params").glob("*.yaml")):
        assert load_params(path)["study"]["primary_metric"] in {
            "nDCG@10",
            "MRR@10",
            "R@5",
            "R@20",
            "R@50",
            "R@100",
            "R@1000",
        }


@pytest.mark.parametrize(
    "p, text",
    [
        (0.04523, "0.0452"),
        (1.0, "1.0000"),
        (0.00017, "0.0002"),
        (0.0001, "0.0001"),
        (0.00001, "< 0.0001"),
        (0.0, "< 0.0001"),
        (float("nan"), None),
        (None, None),
    ],
)
def test_p_values_print_with_four_decimals_never_in_scientific_notation(p, text):
    from mta4dpr_core.report.claims import _p_text

    assert _p_text(p) == text


def test_per_query_is_keyed_by_the_catalogs_run_ids(synthetic_setup):
    """``per_query.csv.gz`` names each run by its run id (variant, and ``@student`` for another student), never by a
    display label; the main run's untrained student is its iteration 0."""
    from mta4dpr_core.experiments.catalog import STAGE_TABLES, runs_for
    from mta4dpr_core.report import claims as C

    setup = synthetic_setup([13, 42, 7])
    frame = C.write_per_query(setup)
    catalog = {spec.run_id for table in STAGE_TABLES["summary"] for spec in runs_for(setup, table)}
    assert set(frame["run"]) == catalog
    assert any("@" in run for run in catalog) and all(" " not in run and "," not in run for run in catalog)
    assert set(frame.loc[frame["run"] == "mta4dpr", "iteration"]) == {0, 1, 2, 3}
