"""Claims as data (report/claims.yaml): every claim the tables show is declared there, each names its runs by the
catalog's run ids, and the paper's side of each is read from the same entry."""

from __future__ import annotations

import types

import pandas as pd
import pytest

from mta4dpr_core.config.params import REPO_ROOT, load_params, profile_path
from mta4dpr_core.config.typed import typed
from mta4dpr_core.report import claims as C
from mta4dpr_core.report import paper as P

# built in claims.py from the paper's letters (Table 7): the assistant_combinations family of claims.yaml
COMBINATION_IDS = ("single-assistant-", "more-assistants-", "better-assistants", "every-single-assistant")


def _declared(claim_id: str) -> bool:
    data = P.load_claims()
    for entry in data["claims"]:
        if entry.get("id") == claim_id:
            return True
        if "family" in entry and "id" in entry and P.template_fields(entry["id"], claim_id) is not None:
            return True
        if entry.get("summary", {}).get("id") == claim_id:
            return True
    return claim_id in data.get("other", {})


@pytest.mark.parametrize("profile", ["smoke", "mini", "regime", "nfcorpus"])
def test_every_claim_in_a_committed_claims_table_is_declared(profile):
    path = REPO_ROOT / "results" / profile / "claims.csv"
    if not path.exists():
        pytest.skip(f"{path} is not committed")
    ids = pd.read_csv(path)["id"].astype(str)
    assert [i for i in ids if not _declared(i) and not i.startswith(COMBINATION_IDS)] == []


@pytest.mark.parametrize("profile", ["smoke", "mini", "mini_transformer", "regime", "nfcorpus"])
def test_every_declared_run_is_in_the_profiles_run_catalog(profile):
    params = load_params(profile_path(profile))
    assistants = [types.SimpleNamespace(name=a["name"]) for a in params["models"]["assistants"]]
    setup = types.SimpleNamespace(params=params, config=typed(params), assistants=assistants)
    index = C.run_index(setup)
    # a stand-in for the stored main runs: the iterations family needs only their number of iterations
    stored = types.SimpleNamespace(
        results=lambda run_id: [types.SimpleNamespace(history=[None] * params["iterations"]["count"])]
    )
    members = {name: expand(setup, stored, {}) for name, expand in C.FAMILIES.items()}
    checked = 0
    for entry in P.load_claims()["claims"]:
        family = entry.get("family")
        required = entry.get("requires")
        if family == "assistant_combinations" or (required and required not in params["study"]["ablations"]):
            continue
        for fields in members[family] if family else [{}]:
            for side in ("advanced", "baseline"):
                for reference in P.fill(entry[side], fields).split(" - "):
                    run_id = reference.partition("@iteration ")[0]
                    assert run_id in index, f"{entry.get('id')}: {side} {reference!r} is not a run of {profile}"
                    checked += 1
    assert checked >= 10


def test_the_paper_side_comes_from_the_claims_entry():
    assert P.claim_source("kl-vs-rbo") == {"table": "table5", "advanced": "mta4dpr", "baseline": "selection_rbo"}
    assert "one iteration" in P.claim_source("removing-iterations")["note"]
    assert P.claim_source("student-size-static-wordllama-64-d")["note"].startswith("our student sizes")
    assert P.claim_source("no-such-claim") is None
    assert "claims" not in P.load()  # the paper's numbers hold numbers only
