"""The profile as frozen dataclasses derived from the schema: ``config.training.learning_rate``, not
``params["training"]["learning_rate"]``.

Every section of :data:`~mta4dpr_core.config.schema.SCHEMA` becomes a frozen dataclass whose fields are its keys
(nested sections nest), built once from a validated profile by :func:`typed`. The mapping stays the profile's
canonical form (it is what run keys hash and what YAML and manifests hold); the dataclasses are how code reads it.
A key added to the schema is a field here without further code.

Example::

    >>> from mta4dpr_core.config.schema import defaults
    >>> config = typed(defaults())
    >>> config.training.steps, config.loss.gamma, config.data.pseudo_queries.min_words
    (100, 15.0, 4)
    >>> config.study.primary_metric
    'nDCG@10'
    >>> config.loss.gamma = 0.0
    Traceback (most recent call last):
    ...
    dataclasses.FrozenInstanceError: cannot assign to field 'gamma'
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from typing import Any

from .schema import SCHEMA, Key


def _class_name(path: str) -> str:
    return "".join(part.title().replace("_", "") for part in path.split(".")) + "Config"


@functools.lru_cache(maxsize=None)
def config_class(path: str = "") -> type:
    """The frozen dataclass of the schema section at dotted ``path`` (``""``: the whole profile)."""
    node = SCHEMA
    for part in filter(None, path.split(".")):
        node = node[part]
    fields = []
    for name, child in node.items():
        if isinstance(child, Key):
            default = child.default
            factory = (lambda d=default: copy.deepcopy(d)) if isinstance(default, (list, dict)) else None
            spec = dataclasses.field(default_factory=factory) if factory else dataclasses.field(default=default)
            fields.append((name, Any, spec))
        else:
            sub = config_class(f"{path}.{name}" if path else name)
            fields.append((name, sub, dataclasses.field(default_factory=sub)))
    doc = f"The `{path or 'profile'}` section of a profile (config/schema.py)."
    cls = dataclasses.make_dataclass(_class_name(path or "profile"), fields, frozen=True, namespace={"__doc__": doc})
    cls.__module__ = __name__
    return cls


def _build(path: str, mapping: dict):
    cls = config_class(path)
    values = {}
    for field in dataclasses.fields(cls):
        if field.name not in mapping:
            continue
        value = mapping[field.name]
        if isinstance(field.type, type) and dataclasses.is_dataclass(field.type):
            value = _build(f"{path}.{field.name}" if path else field.name, value)
        values[field.name] = value
    return cls(**values)


def typed(params: dict):
    """The frozen dataclasses of a validated profile mapping (``load_params``' result)."""
    return _build("", params)
