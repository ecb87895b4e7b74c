"""Safe YAML reading with positions."""

from __future__ import annotations

import pytest

from runnerconf.config.errors import Location, TopologyError
from runnerconf.config.source import read_yaml


def codes(exc: pytest.ExceptionInfo[TopologyError]) -> list[tuple[str, int, int]]:
    return [(p.code, p.line, p.column) for p in exc.value.problems]


def test_positions_of_values_and_keys_merge_keys_and_anchors() -> None:
    data, source = read_yaml("base: &b {x: 1, y: 2}\na:\n  <<: *b\n  y: 3\nl: [1, {k: v}]\n", "f.yaml")
    assert data == {"base": {"x": 1, "y": 2}, "a": {"x": 1, "y": 3}, "l": [1, {"k": "v"}]}
    assert source.values[("a", "y")] == Location("f.yaml", 4, 6)
    assert source.keys[("l",)] == Location("f.yaml", 5, 1)
    assert source.values[("l", 1, "k")] == Location("f.yaml", 5, 12)
    assert source.values[("a",)] == Location("f.yaml", 3, 3)
    # An unknown path is placed at its nearest known ancestor.
    assert source.locate(("l", 1, "nope")) == Location("f.yaml", 5, 8)


@pytest.mark.parametrize(
    ("text", "code", "line", "column"),
    [
        ("x: !!python/object/apply:os.system ['echo hi']\n", "bad-tag", 1, 4),
        ("x: !custom 3\n", "bad-tag", 1, 4),
        ("a: 1\nb: 2\na: 3\n", "duplicate-key", 3, 1),
        ("a: [1, 2\n", "yaml-syntax", 2, 1),
        ("a: &x [*x]\n", "recursive-alias", 1, 4),
        ("---\na: 1\n---\nb: 2\n", "yaml-syntax", 3, 1),
        ("", "empty", 1, 1),
        ("# only a comment\n", "empty", 1, 1),
        ("- 1\n- 2\n", "not-a-mapping", 1, 1),
        ("1: x\n", "bad-key", 1, 1),
        ("a:\n  <<: 3\n", "bad-merge", 2, 7),
    ],
)
def test_refused_documents(text: str, code: str, line: int, column: int) -> None:
    with pytest.raises(TopologyError) as exc:
        read_yaml(text, "f.yaml")
    assert codes(exc) == [(code, line, column)]


def test_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    with pytest.raises(TopologyError) as exc:
        read_yaml("\n".join(lines) + "\n", "bomb.yaml")
    (problem,) = exc.value.problems
    assert problem.code == "too-large"
    assert "alias bomb" in problem.message


def test_python_tags_never_construct_anything(tmp_path: object) -> None:
    text = "x: !!python/object/new:builtins.exec ['raise SystemExit(99)']\n"
    with pytest.raises(TopologyError) as exc:
        read_yaml(text, "f.yaml")
    assert exc.value.problems[0].code == "bad-tag"
