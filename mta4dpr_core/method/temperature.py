"""Assistant temperatures from a rule, fitted on training rows.

Fusion averages the assistants' softmax distributions and selection compares them
with the teacher's, so their sharpness must be comparable: a cosine scorer at
temperature 1 is nearly uniform over its candidates while BM25 at temperature 1 is
peaked. Each assistant's temperature ``T_a`` is fitted on the iteration-1 training
rows (never the eval rows, never the test set) by one of two rules:

- ``kl``: ``T_a = argmin_T mean_q KL(p_teacher(q) || softmax(s_a(q) / T))``
- ``entropy``: ``T_a`` such that ``mean_q H(softmax(s_a(q) / T)) = mean_q H(p_teacher(q))``

A temperature given by hand in the assistant's spec overrides the rule.

>>> import numpy as np
>>> teacher = np.log(np.array([[0.7, 0.2, 0.1]]))
>>> round(fit_temperature(teacher, teacher * 0.5, "kl"), 2)
0.5
"""

from __future__ import annotations

import numpy as np

from .construction import TrainingData
from .fusion import softmax
from .selection import kl_divergence

BOUNDS = (1e-3, 1e3)  # temperatures searched over, in log space


def _entropy(probs):
    return float(-(probs * np.log(np.clip(probs, 1e-12, None))).sum(-1).mean())


def fit_temperature(
    teacher_logits: np.ndarray,
    assistant_scores: np.ndarray,
    rule: str = "kl",
    teacher_temperature: float = 1.0,
    mask: np.ndarray | None = None,
) -> float:
    """One assistant's temperature over rows of candidate scores (shape ``[rows, k]``; ``mask`` marks
    the padded candidates to leave out)."""
    teacher_logits = np.asarray(teacher_logits, dtype=np.float64)
    scores = np.asarray(assistant_scores, dtype=np.float64)
    if mask is not None:
        teacher_logits = np.where(mask, teacher_logits, -np.inf)
        scores = np.where(mask, scores, -np.inf)
    teacher = softmax(teacher_logits / teacher_temperature)

    if rule == "kl":

        def objective(log_t):
            return float(np.mean(kl_divergence(teacher[None], softmax(scores / np.exp(log_t))[None])))
    elif rule == "entropy":
        target = _entropy(teacher)

        def objective(log_t):
            return (_entropy(softmax(scores / np.exp(log_t))) - target) ** 2
    else:
        raise ValueError(f"unknown temperature rule {rule!r}; known: kl, entropy")
    from scipy import optimize  # noqa: PLC0415 (lazy: 0.7 s of every process's start, and only a fit needs it)

    result = optimize.minimize_scalar(objective, bounds=np.log(BOUNDS), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def assistant_temperatures(
    data: TrainingData, pool: list, rule: str, teacher_temperature: float, rows: np.ndarray
) -> dict:
    """``{assistant name: temperature}`` for the pool: hand-set values kept, the others fitted on ``rows``."""
    if rule == "fixed":
        return {a.name: float(a.temperature) for a in pool}
    candidates = np.asarray(data.candidates[rows])
    mask = (candidates >= 0) & np.isfinite(np.asarray(data.teacher_scores[rows]))
    teacher = np.asarray(data.teacher_scores[rows])
    out = {}
    for index, assistant in enumerate(pool):
        if getattr(assistant, "temperature_given", True):
            out[assistant.name] = float(assistant.temperature)
        else:
            out[assistant.name] = fit_temperature(
                teacher, np.asarray(data.assistant_scores[index, rows]), rule, teacher_temperature, mask
            )
    return out
