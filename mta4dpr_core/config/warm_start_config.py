"""The [CLS] warm start's settings (``models.student.warm_start``), validated when a profile loads.

Kept apart from ``warm_start.py`` (which trains, and imports torch) so that checking a profile
loads no model and no torch.

>>> WarmStartConfig.from_spec({"steps": 500, "learning_rate": 3.0e-4}).steps
500
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .errors import ParamsError
from .schema import SCHEMA


@dataclass(frozen=True)
class WarmStartConfig:
    target: str = "all-MiniLM-L6-v2"  # a mean-pooled sentence encoder whose embedding the [CLS] learns
    texts: str = "msmarco-trecdl"  # a corpus directory under data.root (BEIR or MS MARCO TSV layout)
    passages: int = 4000  # passages sampled from it; as many query-length crops are added
    steps: int = 400
    batch_size: int = 64
    learning_rate: float = 3e-4
    warmup_steps: int = 20
    max_length: int = 96
    amp: str = "auto"  # "auto" (bf16 where native, else float32), "bf16" or "off": see mta4dpr_core/config/precision.py
    seed: int = 0
    # the dropout masks on the CPU, as training.dropout_masks: "philox" (the same on every CPU kind) or "torch"
    dropout_masks: str = "philox"

    @classmethod
    def from_spec(cls, spec: dict, key="models.student.warm_start", source=None):
        if not isinstance(spec, dict):
            raise ParamsError(key, f"expected a mapping of warm-start settings, got {spec!r}", source)
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(spec) - set(known))
        if unknown:
            raise ParamsError(f"{key}.{unknown[0]}", f"unknown warm-start key; known keys: {sorted(known)}", source)
        config = cls(**spec)
        for name in ("passages", "steps", "batch_size", "max_length"):
            value = getattr(config, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParamsError(f"{key}.{name}", f"expected a positive integer, got {value!r}", source)
        for name in ("target", "texts"):
            value = getattr(config, name)
            if not isinstance(value, str) or not value.strip():
                raise ParamsError(f"{key}.{name}", f"expected a non-empty string, got {value!r}", source)
        for name in ("learning_rate",):
            value = getattr(config, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ParamsError(
                    f"{key}.{name}",
                    f"expected a positive number (write 3.0e-4, not 3e-4, in YAML), got {value!r}",
                    source,
                )
        _check_choices(config, key, source)
        return config


# the masks' choices are training.dropout_masks' own
CHOICES = {"amp": ("auto", "bf16", "off"), "dropout_masks": tuple(sorted(SCHEMA["training"]["dropout_masks"].choices))}


def _check_choices(config: WarmStartConfig, key: str, source) -> None:
    for name, allowed in CHOICES.items():
        if getattr(config, name) not in allowed:
            choices = " or ".join(f"'{a}'" for a in allowed)
            raise ParamsError(f"{key}.{name}", f"must be {choices}, got {getattr(config, name)!r}", source)
