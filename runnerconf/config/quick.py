"""Whether a topology document is valid, answered without pydantic where it can be.

``runnerconf validate`` asks :func:`quick_problems` first: a document of built-in kinds is
checked by the validator that :mod:`runnerconf.config.validator_cache` keeps (the models' own
schema and rules, making plain records instead of models), then its cross-references. A valid
document gets its answer (its warnings) without pydantic or the models being imported; for
anything else -- an error anywhere, a kind from a package, no kept validator yet -- the answer
is None, and the models decide, with their messages, exactly as they would have.
"""

from __future__ import annotations

from typing import Any

from runnerconf.config.errors import Problem, TopologyError, add_new
from runnerconf.config.references import check_references
from runnerconf.config.source import SourceMap

__all__ = ["quick_problems"]


def quick_problems(data: dict[str, Any], source_map: SourceMap, problems: list[Problem]) -> list[Problem] | None:
    """The problems of a document that :func:`~runnerconf.config.document.read_topology_data`
    read (``problems``: those found so far) when it is valid: its warnings, as the models would
    give them; None when the models must decide."""
    if any(p.severity == "error" for p in problems):
        return None
    from runnerconf.config.validator_cache import checker

    check = checker()
    if check is None:
        return None
    try:
        check.validate_python(data)
    except Exception:  # a ValidationError, or a rule that needs a model: the models decide
        return None
    found = list(problems)
    add_new(found, check_references(data, source_map))  # as the models' path adds them
    if any(p.severity == "error" for p in found):
        return TopologyError(found).problems
    return [p for p in found if p.severity == "warning"]
