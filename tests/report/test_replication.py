"""The replication table (mta4dpr_core.report.replication) on two tiny synthetic claims.csv files, and the captions
built from the profile's collection (studies.collection_label)."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mta4dpr_core.config.typed import typed
from mta4dpr_core.report import replication as R
from mta4dpr_core.report import tables as T
from mta4dpr_core.report.statistics import delta_relative_improvement, effect_ratio

# claims.CLAIM_COLUMNS (checked against the module below)
CLAIM_COLUMNS = [
    "id",
    "claim",
    "table",
    "also in",
    "paper Δ",
    "paper table",
    "effect",
    "low",
    "high",
    "p",
    "p (Holm)",
    "verdict",
    "combination of",
    "ours MRR@10 Δ",
    "effect ratio (MRR@10)",
    "ΔRI (MRR@10)",
    "paper DL nDCG@10 Δ",
    "effect ratio (nDCG@10 vs DL)",
    "ΔRI (nDCG@10 vs DL)",
    "seeds holding",
    "seeds",
    "seed std",
    "per-seed effect",
    "family",
    "comparison",
    "comparison id",
    "metric",
    "ours",
    "other",
    "queries",
    "df",
    "effect (unrounded)",
    "paper note",
    "steps",
]
Q = "quality"
METRIC = "nDCG@10 (%)"


def claim(id, verdict, effect=None, low=None, high=None, ours=None, other=None, family=Q, text=None, metric=METRIC):
    return {
        "id": id,
        "claim": text or f"claim {id}",
        "effect": effect,
        "low": low,
        "high": high,
        "verdict": verdict,
        "family": family,
        "metric": metric if effect is not None else None,
        "ours": ours,
        "other": other,
    }


# (id, original row, replication row)
ORIGINAL = [
    claim("same-confirmed", "confirmed", 2.0, 1.0, 3.0, ours=52.0, other=50.0),
    claim("opposite-significant", "contradicted", -1.5, -2.5, -0.5, ours=48.5, other=50.0),
    claim("one-side-same-way", "confirmed", 1.0, 0.2, 1.8, ours=51.0, other=50.0),
    claim("neither", "inconclusive", 0.3, -0.4, 1.0, ours=50.3, other=50.0),
    claim("one-side-other-way", "confirmed", 1.0, 0.3, 1.7, ours=51.0, other=50.0),
    claim("borderline-vs-confirmed", "borderline", 0.8, 0.0, 1.6, ours=50.8, other=50.0),
    claim("iterations-x-assistants", "confirmed", 1.1, 0.1, 2.1, ours=1.8, other=0.7),
    claim("only-original", "confirmed", 1.0, 0.5, 1.5, ours=51.0, other=50.0),
    claim("every-thing", "confirmed", family="composite (summary of its parts; not counted)"),
    claim(
        "selection-overhead",
        "confirmed",
        -5.4,
        -5.41,
        -5.39,
        ours=0.35,
        other=5.76,
        family=R.TIMING,
        metric="share of step time (%)",
    ),
]
REPLICATION = [  # another order, and the display text of one claim changed: the id is the key
    claim("only-replication", "inconclusive", 0.1, -0.5, 0.7, ours=40.1, other=40.0),
    claim("neither", "inconclusive", -0.2, -0.9, 0.5, ours=39.8, other=40.0),
    claim("same-confirmed", "confirmed", 1.0, 0.2, 1.8, ours=41.0, other=40.0, text="a reworded claim"),
    claim("opposite-significant", "confirmed", 1.2, 0.4, 2.0, ours=41.2, other=40.0),
    claim("one-side-same-way", "inconclusive", 0.5, -0.3, 1.3, ours=40.5, other=40.0),
    claim("one-side-other-way", "inconclusive", -0.4, -1.2, 0.4, ours=39.6, other=40.0),
    claim("borderline-vs-confirmed", "confirmed", 0.9, 0.1, 1.7, ours=40.9, other=40.0),
    claim("iterations-x-assistants", "confirmed", 0.55, 0.05, 1.05, ours=1.0, other=0.45),
    claim("every-thing", "inconclusive", family="composite (summary of its parts; not counted)"),
    claim(
        "selection-overhead",
        "confirmed",
        -5.7,
        -5.71,
        -5.69,
        ours=0.06,
        other=5.76,
        family=R.TIMING,
        metric="share of step time (%)",
    ),
]


def write_claims(directory: Path, rows, params=None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).reindex(columns=CLAIM_COLUMNS).to_csv(directory / "claims.csv", index=False, float_format="%.2f")
    if params is not None:
        (directory / "manifest.json").write_text(json.dumps({"params": params}))
    return directory


@pytest.fixture
def pair(tmp_path):
    return write_claims(tmp_path / "orig", ORIGINAL), write_claims(tmp_path / "repl", REPLICATION)


def test_claim_columns_match_the_claims_module():
    from mta4dpr_core.report.claims import CLAIM_COLUMNS as columns

    assert columns == CLAIM_COLUMNS


def test_join_on_id_and_agreement_categories(pair):
    df = R.replication_table(*pair)
    assert list(df.columns) == [
        "id",
        "claim",
        "SciFact Δ [95%]",
        "SciFact verdict",
        "NFCorpus Δ [95%]",
        "NFCorpus verdict",
        "replicates",
        "effect ratio",
        "ΔRI",
        "metric",
        "family",
    ]
    by_id = df.set_index("id")
    # one row per id in both, in the original's order; a changed display text does not break the join
    assert list(df["id"]) == [r["id"] for r in ORIGINAL if r["id"] != "only-original"]
    assert by_id.loc["same-confirmed", "claim"] == "claim same-confirmed"
    assert df.attrs["only in SciFact"] == ["only-original"]
    assert df.attrs["only in NFCorpus"] == ["only-replication"]
    assert by_id.loc["same-confirmed", "SciFact Δ [95%]"] == "+2.00 [+1.00, +3.00]"
    assert by_id.loc["same-confirmed", "NFCorpus verdict"] == "confirmed"
    expected = {
        "same-confirmed": "yes",
        "opposite-significant": "no",
        "one-side-same-way": "same direction, not significant",
        "neither": "both inconclusive",
        "one-side-other-way": "no",
        "borderline-vs-confirmed": "same direction, not significant",  # borderline is not significant
        "iterations-x-assistants": "yes",
        "every-thing": "one inconclusive",
        "selection-overhead": "yes",
    }
    assert by_id["replicates"].to_dict() == expected


def test_replicates_rule():
    assert R.replicates("confirmed", 1.0, "confirmed", 0.1) == "yes"
    assert R.replicates("contradicted", -1.0, "contradicted", -2.0) == "yes"
    assert R.replicates("confirmed", 1.0, "contradicted", -1.0) == "no"
    assert R.replicates("inconclusive", 0.2, "contradicted", -1.0) == "no"
    assert R.replicates("inconclusive", -0.2, "contradicted", -1.0) == "same direction, not significant"
    assert R.replicates("confirmed", 1.0, "inconclusive", 0.0) == "no"
    assert R.replicates("inconclusive", 1.0, "borderline", -1.0) == "both inconclusive"
    assert R.replicates("confirmed", None, "inconclusive", None) == "one inconclusive"
    assert R.replicates("contradicted", None, "contradicted", None) == "yes"


def test_effect_ratio_and_delta_ri_by_hand(pair):
    by_id = R.replication_table(*pair).set_index("id")
    # ER = replication Δ / original Δ; ΔRI = RI(original) - RI(replication), RI = (advanced - baseline) / baseline
    assert by_id.loc["same-confirmed", "effect ratio"] == pytest.approx(1.0 / 2.0)
    assert by_id.loc["same-confirmed", "ΔRI"] == pytest.approx((52 - 50) / 50 - (41 - 40) / 40)  # 0.04 - 0.025
    assert by_id.loc["opposite-significant", "effect ratio"] == pytest.approx(1.2 / -1.5)
    assert by_id.loc["opposite-significant", "ΔRI"] == pytest.approx(-1.5 / 50 - 1.2 / 40)
    assert by_id.loc["neither", "ΔRI"] == pytest.approx(0.3 / 50 - (-0.2 / 40))
    # the interaction compares gains, not scores: ER yes, ΔRI no
    assert by_id.loc["iterations-x-assistants", "effect ratio"] == pytest.approx(0.5)
    assert math.isnan(by_id.loc["iterations-x-assistants", "ΔRI"])
    # no ER / ΔRI for composites (no Δ) and timing
    for claim_id in ("every-thing", "selection-overhead"):
        assert math.isnan(by_id.loc[claim_id, "effect ratio"]) and math.isnan(by_id.loc[claim_id, "ΔRI"])


def test_summary_counts(pair):
    s = R.summary(R.replication_table(*pair))
    # quality rows in both: same-confirmed, opposite-significant, one-side-same-way, neither, one-side-other-way,
    # borderline-vs-confirmed, iterations-x-assistants
    assert s["distinct comparisons"] == 7
    assert s["replicated"] == 2
    assert s["contradicted direction"] == 2
    assert s["inconclusive"] == 3
    assert s["same direction, not significant"] == 2 and s["both inconclusive"] == 1 and s["one inconclusive"] == 0
    assert s["only in SciFact"] == ["only-original"] and s["only in NFCorpus"] == ["only-replication"]


def test_matches_repro_eval_on_per_topic_scores(tmp_path):
    """ER and ΔRI through the claims files agree with repro_eval's own ER / DRI on the per-topic scores."""
    overall = pytest.importorskip("repro_eval.measure.overall_effects")
    rng = np.random.default_rng(0)
    orig_a, orig_b = rng.uniform(0.3, 0.9, 7), rng.uniform(0.2, 0.8, 7)
    rep_a, rep_b = rng.uniform(0.3, 0.9, 11), rng.uniform(0.2, 0.8, 11)  # a replication: other topics, another count
    runs = [{f"q{i}": {"ndcg_cut_10": float(v)} for i, v in enumerate(x)} for x in (orig_a, orig_b, rep_a, rep_b)]
    er = overall.ER(*runs)["ndcg_cut_10"]
    dri = overall.DRI(*runs)["ndcg_cut_10"]
    # the statistics functions
    assert effect_ratio((rep_a - rep_b).mean(), (orig_a - orig_b).mean()) == pytest.approx(er)
    assert delta_relative_improvement(orig_a.mean(), orig_b.mean(), rep_a.mean(), rep_b.mean()) == pytest.approx(dri)

    # and the table, from claims.csv values in percent
    def side(a, b, name):
        d = 100 * (a - b).mean()
        row = claim("x", "confirmed", d, d - 1, d + 1, ours=100 * a.mean(), other=100 * b.mean())
        directory = tmp_path / name
        directory.mkdir()
        pd.DataFrame([row]).reindex(columns=CLAIM_COLUMNS).to_csv(
            directory / "claims.csv", index=False
        )  # full precision
        return directory

    row = R.replication_table(side(orig_a, orig_b, "o"), side(rep_a, rep_b, "r")).iloc[0]
    assert row["effect ratio"] == pytest.approx(er)
    assert row["ΔRI"] == pytest.approx(dri)


def test_means_from_per_query_when_claims_lack_them(tmp_path):
    """Without `ours` / `other` in claims.csv the means behind ΔRI come from per_query.csv.gz (each seed's last iteration)."""
    records = []
    for seed in (1, 2):
        for q, (first, last, base) in enumerate([(0.1, 0.6, 0.5), (0.2, 0.8, 0.4)]):
            records += [
                ("mta4dpr", seed, 1, "test", q, "nDCG@10", first),
                ("mta4dpr", seed, 2, "test", q, "nDCG@10", last),
                ("no_assistants", seed, 2, "test", q, "nDCG@10", base),
                ("no_assistants", seed, 2, "test", q, "MRR@10", 0.9),
            ]
    rows = [claim("mta4dpr-vs-no-assistant", "confirmed", 25.0, 20.0, 30.0)]
    original = write_claims(tmp_path / "o", rows)
    df = pd.DataFrame(records, columns=["run", "seed", "iteration", "test set", "query_id", "metric", "value"])
    (original / "per_query.csv.gz").write_bytes(gzip.compress(df.to_csv(index=False).encode()))
    assert R.means_from_per_query(original, "mta4dpr-vs-no-assistant") == pytest.approx((70.0, 45.0))
    replication = write_claims(
        tmp_path / "r", [claim("mta4dpr-vs-no-assistant", "confirmed", 5.0, 1.0, 9.0, ours=55.0, other=50.0)]
    )
    row = R.replication_table(original, replication).iloc[0]
    assert row["ΔRI"] == pytest.approx((70 - 45) / 45 - (55 - 50) / 50)
    assert row["effect ratio"] == pytest.approx(5.0 / 25.0)


def test_missing_claims_file_is_named(tmp_path, pair):
    original, _ = pair
    with pytest.raises(R.MissingClaimsError, match=r"nfcorpus[/\\]claims\.csv"):
        R.replication_table(original, tmp_path / "nfcorpus")
    with pytest.raises(FileNotFoundError, match=r"mini[/\\]claims\.csv"):
        R.write_replication(tmp_path, "mini", "nfcorpus")


def test_write_replication(tmp_path):
    write_claims(tmp_path / "mini", ORIGINAL, params={"data": {"test": "scifact/test", "train": "scifact/train"}})
    write_claims(
        tmp_path / "nfcorpus", REPLICATION, params={"data": {"test": "nfcorpus/test", "train": "nfcorpus/train"}}
    )
    df = R.write_replication(tmp_path, "mini", "nfcorpus")
    assert "SciFact Δ [95%]" in df.columns and "NFCorpus verdict" in df.columns
    written = pd.read_csv(tmp_path / "replication.csv")
    assert list(written["id"]) == list(df["id"])
    assert written.set_index("id").loc["same-confirmed", "ΔRI"] == pytest.approx(0.015)
    md = (tmp_path / "replication.md").read_text()
    assert md.startswith("## Replication") and "| same-confirmed |" in md
    assert "Summary: 7 distinct comparisons" in md and "Only in SciFact: `only-original`" in md


# ---- captions from the profile's collection -------------------------------------------------------------------

NFCORPUS = {"profile": "nfcorpus", "data": {"train": "nfcorpus/train", "test": "nfcorpus/test", "extra_test": []}}
MINI = {
    "profile": "mini",
    "data": {
        "train": "scifact/train",
        "test": "scifact/test",
        "extra_test": ["msmarco-trecdl/dl19", "msmarco-trecdl/dl20"],
    },
}


def test_collection_label():
    assert T.collection_label(NFCORPUS) == "NFCorpus"
    assert T.collection_label(MINI) == "SciFact"
    assert T.collection_label({"data": {"test": "msmarco-trecdl/dl19"}}) == "MS MARCO"
    assert T.collection_label({"data": {"test": "fiqa/test"}}) == "fiqa"
    assert T.collection_label(NFCORPUS, "train") == "NFCorpus"


def test_captions_name_the_profile_collection(tmp_path, monkeypatch):
    from mta4dpr_core.report import studies as S

    assert S.collection_label is T.collection_label
    assert S._zero_shot_suffix(NFCORPUS) == ""  # no extra test sets on nfcorpus: no note about them
    assert "SciFact training" in S._zero_shot_suffix(MINI)
    assert "NFCorpus training" in S.zero_shot_note({**NFCORPUS, "data": {**NFCORPUS["data"], "extra_test": ["x/y"]}})

    # one caption-producing path (Table 5) on a fake nfcorpus setup
    params = {**NFCORPUS, "output": {"results_dir": str(tmp_path)}, "study": {"selection_methods": ["kl"]}}
    evaluation = {"test": {"nDCG@10": 0.5, "MRR@10": 0.4, "R@50": 0.7, "R@1000": 0.9, "R@5": 0.3, "R@20": 0.6}}
    monkeypatch.setattr(S, "run_over_seeds", lambda setup, variant="mta4dpr", **kw: [SimpleNamespace(final=evaluation)])
    S.selection_study(SimpleNamespace(params=params, config=typed(params)))
    caption = (tmp_path / "nfcorpus" / "table5.md").read_text().splitlines()[0]
    assert "NFCorpus test" in caption and "SciFact" not in caption

    # no caption hard-codes the collection any more
    assert "SciFact" not in Path(S.__file__).read_text()


def test_effect_ratios_come_from_unrounded_effects(tmp_path):
    """0.004 / 0.006 rounds to 0.00 / 0.01 in the table (ratio 0.0); the unrounded column gives 0.667."""
    original = [dict(claim("x", "inconclusive", 0.006, -1, 1, 50.006, 50.0), **{"effect (unrounded)": "0.006000"})]
    replication = [dict(claim("x", "inconclusive", 0.004, -1, 1, 40.004, 40.0), **{"effect (unrounded)": "0.004000"})]
    df = R.replication_table(write_claims(tmp_path / "o", original), write_claims(tmp_path / "r", replication))
    assert df.loc[0, "effect ratio"] == pytest.approx(0.004 / 0.006)
