"""The run catalog: which (variant, seed, ...) runs each paper table reads, written once.

A run is a frozen :class:`RunSpec`. :func:`runs_for` says which runs a table needs; the grid
schedules a notebook stage's runs from it (:func:`planned_runs`) and the tables read the same
specs, so what is computed and what is read cannot drift apart. Variant ids (``mta4dpr``,
``no_assistants``, ``selection_random``, ``assistants_0_1``, ...) are built here only.

Example::

    >>> subset_variant((0, 2))
    'assistants_0_2'
    >>> selection_variant("rbo")
    'selection_rbo'
    >>> teacher_mix_variant(0.25), teacher_mix_variant(1.0)
    ('teacher_mix_025', 'assistants_are_teacher')
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

from ..config.ids import student_id

# the tables (and figures) a notebook stage shows: its runs are the union of theirs
STAGE_TABLES = {
    "selection": ("table5",),
    "training": ("table1",),
    "ablations": ("table1", "table3", "table7", "dose_response"),
    "scale_and_cost": ("table8", "table6"),
}
STAGE_TABLES["summary"] = tuple(dict.fromkeys(t for tables in STAGE_TABLES.values() for t in tables))


# the controls at MTA4DPR's total distillation weight, in every profile (Table 1, inside the claim family)
CONTROLS = ("kd_matched_weight", "assistants_are_teacher")


def main_seeds(setup) -> list[int]:
    """Every seed of the profile (Tables 1-5 and 8)."""
    return list(setup.config.seeds)


def grid_seeds(setup) -> list[int]:
    """The seeds of the grids of Tables 6 and 7: the first ``study.combination_seeds`` (0 = all)."""
    limit = setup.config.study.combination_seeds
    return list(setup.config.seeds[:limit] if limit else setup.config.seeds)


def subset_variant(subset) -> str:
    """The variant id of MTA4DPR over a subset of the assistants (by index), as in Table 7."""
    return f"assistants_{'_'.join(map(str, subset))}"


def selection_variant(method: str) -> str:
    """The variant id of MTA4DPR with another selection method (Table 5); KL is the main run."""
    return "mta4dpr" if method == "kl" else f"selection_{method}"


def teacher_mix_variant(weight: float) -> str:
    """The variant id of MTA4DPR whose assistants' training logits are mixed with the teacher's (the dose-response
    sweep); lambda = 0 is ``mta4dpr`` itself and lambda = 1 the ``assistants_are_teacher`` control."""
    if weight == 0:
        return "mta4dpr"
    if weight == 1:
        return "assistants_are_teacher"
    return f"teacher_mix_{round(100 * weight):03d}"


def dose_response_weights(setup) -> list[float]:
    """The sweep's lambdas with both ends (0 and 1), sorted; empty when the profile runs no sweep."""
    inner = setup.config.study.dose_response
    return sorted({0.0, 1.0, *map(float, inner)}) if inner else []


def test_evaluation(variant, assistant_subset=None, student_spec=None) -> str:
    """The main run is evaluated on the test sets before training and after every iteration
    (Tables 1 and 4); every other run after its last iteration only."""
    main = variant == "mta4dpr" and assistant_subset is None and student_spec is None
    return "all" if main else "final"


@dataclass(frozen=True)
class RunSpec:
    """One run: a variant of Algorithm 1 for one seed (overrides and the student spec as canonical JSON)."""

    variant: str
    seed: int
    overrides_json: str = "null"
    assistant_subset: tuple[int, ...] | None = None
    student_spec_json: str = "null"

    @classmethod
    def of(cls, variant, seed, overrides=None, assistant_subset=None, student_spec=None) -> RunSpec:
        return cls(
            variant,
            int(seed),
            json.dumps(overrides, sort_keys=True),
            tuple(assistant_subset) if assistant_subset is not None else None,
            json.dumps(student_spec, sort_keys=True),
        )

    @property
    def overrides(self):
        return json.loads(self.overrides_json)

    @property
    def student_spec(self):
        return json.loads(self.student_spec_json)

    @property
    def run_id(self) -> str:
        """The run's id in ``per_query.csv.gz`` and the claims: its variant, then ``@<student id>`` for a student
        other than the profile's (the seed is a column of its own)."""
        return self.variant if self.student_spec is None else f"{self.variant}@{student_id(self.student_spec)}"

    @property
    def evaluate_test(self) -> str:
        return test_evaluation(self.variant, self.assistant_subset, self.student_spec)

    def job(self) -> dict:
        """The keyword arguments of ``iteration.run_mta4dpr`` (and the grid's job record)."""
        return {
            "variant": self.variant,
            "seed": self.seed,
            "overrides": self.overrides,
            "assistant_subset": list(self.assistant_subset) if self.assistant_subset is not None else None,
            "student_spec": self.student_spec,
            "evaluate_test": self.evaluate_test,
        }


def over_seeds(variant, seeds, overrides=None, assistant_subset=None, student_spec=None) -> list[RunSpec]:
    return [RunSpec.of(variant, s, overrides, assistant_subset, student_spec) for s in seeds]


def _selection_runs(setup, main, grid) -> list[RunSpec]:
    """Table 5: every selection method other than KL (the main run)."""
    return [
        spec
        for method in setup.config.study.selection_methods
        if method != "kl"
        for spec in over_seeds(selection_variant(method), main, {"selection": {"method": method}})
    ]


def _baseline_runs(setup, main, grid) -> list[RunSpec]:
    """Tables 1 and 8: teacher-only KD over the same iterations, in one iteration, and the controls."""
    return [spec for variant in ("no_assistants", "one_iteration_kd", *CONTROLS) for spec in over_seeds(variant, main)]


def _ablation_runs(setup, main, grid) -> list[RunSpec]:
    """Table 3: the teacher-only baselines and each ablation of the profile."""
    variants = ("no_assistants", "one_iteration_kd", *setup.config.study.ablations)
    return [spec for variant in variants for spec in over_seeds(variant, main)]


def _combination_runs(setup, main, grid) -> list[RunSpec]:
    """Table 7: MTA4DPR over every proper subset of the assistants, and no assistant, on the grid seeds."""
    if not setup.config.study.assistant_combinations:
        return []
    count = len(setup.assistants)
    subsets = [s for size in range(1, count) for s in itertools.combinations(range(count), size)]
    return (
        over_seeds("mta4dpr", grid)
        + over_seeds("no_assistants", grid)
        + [spec for subset in subsets for spec in over_seeds(subset_variant(subset), grid, {}, subset)]
    )


def _student_size_runs(setup, main, grid) -> list[RunSpec]:
    """Table 6: MTA4DPR and no assistant for every other student size, on the grid seeds."""
    others = [spec for spec in setup.config.study.student_sizes if spec != setup.config.models.student]
    return [
        run
        for spec in others
        for variant in ("mta4dpr", "no_assistants")
        for run in over_seeds(variant, grid, student_spec=spec)
    ]


def _dose_response_runs(setup, main, grid) -> list[RunSpec]:
    """The dose-response sweep: the matched-weight control and every lambda, on the grid seeds."""
    weights = dose_response_weights(setup)
    if not weights:
        return []
    runs = over_seeds("kd_matched_weight", grid)
    for weight in weights:
        variant = teacher_mix_variant(weight)
        named = variant in ("mta4dpr", "assistants_are_teacher")
        runs += over_seeds(variant, grid, None if named else {"loss": {"teacher_mix": weight}})
    return runs


# what each table reads: (does it include the main run over every seed, the function listing the rest)
TABLE_RUNS = {
    "table5": (True, _selection_runs),
    "table1": (True, _baseline_runs),
    "table8": (True, _baseline_runs),
    "table3": (True, _ablation_runs),
    "table7": (False, _combination_runs),
    "table6": (False, _student_size_runs),
    "dose_response": (False, _dose_response_runs),
}


def runs_for(setup, table: str) -> list[RunSpec]:
    """The runs ``table`` reads (the main run first)."""
    if table not in TABLE_RUNS:
        raise KeyError(f"no run catalog for {table!r}; known: {sorted(set(STAGE_TABLES['summary']))}")
    with_main, runs = TABLE_RUNS[table]
    main, grid = main_seeds(setup), grid_seeds(setup)
    return (over_seeds("mta4dpr", main) if with_main else []) + runs(setup, main, grid)


def planned_runs(setup, stage: str) -> list[dict]:
    """The jobs of a notebook stage: the runs of every table it shows, each once."""
    specs = [spec for table in STAGE_TABLES[stage] for spec in runs_for(setup, table)]
    return [spec.job() for spec in dict.fromkeys(specs)]
