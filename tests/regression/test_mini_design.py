"""Guards on the committed mini results' design (read from results/mini/, nothing is rerun):
the teacher is the rule's choice on training queries, independent of the assistants, and stronger
than every assistant there; every student variant trained the same number of steps."""

import pandas as pd
import pytest

from mta4dpr_core.config.independence import check_independence
from mta4dpr_core.config.params import REPO_ROOT, load_params, profile_path

RESULTS = REPO_ROOT / "results" / "mini"
pytestmark = pytest.mark.skipif(not (RESULTS / "teacher_selection.csv").exists(), reason="results/mini not generated")


def test_the_profile_teacher_is_the_rule_choice_on_training_queries():
    table = pd.read_csv(RESULTS / "teacher_selection.csv")
    chosen = table[table["chosen by the rule"]]
    assert len(chosen) == 1 and bool(chosen.iloc[0]["profile's teacher"])
    teacher_score = float(chosen.iloc[0]["train nDCG@10"])
    assistants = table[table["role"] == "assistant"]
    profile_assistants = load_params(profile_path("mini"))["models"]["assistants"]
    assert len(assistants) == len(profile_assistants) and (assistants["train nDCG@10"] < teacher_score).all()


def test_the_teacher_shares_nothing_with_the_assistants():
    params = load_params(profile_path("mini"))
    check_independence(params["models"]["teacher"], params["models"]["assistants"])


def test_every_student_variant_trained_the_same_steps():
    table8 = pd.read_csv(RESULTS / "table8.csv")
    assert table8["steps"].nunique() == 1
