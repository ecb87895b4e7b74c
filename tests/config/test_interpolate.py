"""Environment variable interpolation."""

from __future__ import annotations

import pytest

from runnerconf.config.interpolate import InterpolationError, VariableUse, interpolate

ENV = {"PORT": "7860", "EMPTY": "", "HOST": "example"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("${PORT}", "7860"),
        ("http://${HOST}:${PORT}/x", "http://example:7860/x"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY-fallback}", ""),
        ("${MISSING-fallback}", "fallback"),
        ("${MISSING:-${PORT}}", "7860"),
        ("${EMPTY}", ""),
        ("$$5 and $$${PORT}", "$5 and $7860"),
        ("costs $5", "costs $5"),
        ("${PORT:?needed}", "7860"),
    ],
)
def test_forms(text: str, expected: str) -> None:
    assert interpolate(text, ENV) == expected


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("${MISSING}", "missing-variable", "variable MISSING is not set and has no default"),
        ("${MISSING:?set the token}", "missing-variable", "variable MISSING is not set: set the token"),
        ("${EMPTY:?must not be empty}", "missing-variable", "variable EMPTY is empty: must not be empty"),
        ("${MISSING?}", "missing-variable", "variable MISSING is not set: required"),
        ("${1BAD}", "bad-variable", "expected a name"),
        ("${PORT", "bad-variable", "unclosed"),
        ("${PORT:x}", "bad-variable", "after the name"),
    ],
)
def test_errors(text: str, code: str, message: str) -> None:
    with pytest.raises(InterpolationError) as exc:
        interpolate(text, ENV)
    assert exc.value.code == code
    assert message in str(exc.value)


def test_uses_are_recorded() -> None:
    uses: list[VariableUse] = []
    interpolate("${PORT} ${TOKEN:-none} ${NEED:?x}", {"PORT": "1", "NEED": "y"}, uses)
    assert uses == [
        VariableUse("PORT", None, True),
        VariableUse("TOKEN", "none", False),
        VariableUse("NEED", None, True),
    ]
