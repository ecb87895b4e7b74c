"""The schema in a real editor: yaml-language-server (the server behind VS Code's YAML extension,
and Neovim's and Helix's yamlls) over LSP, with the modeline our files carry.

yaml-language-server comes from npm: ``.ci/run`` installs it into ``.ci/node``. Elsewhere the
tests look for ``RUNNERCONF_YAML_LANGUAGE_SERVER`` or ``yaml-language-server`` on PATH, and skip
with that reason when it is missing; with ``RUNNERCONF_REQUIRE_EDITOR=1`` (set by CI) a missing
server fails instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lsp_client import LanguageServer

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
MODELINE = "# yaml-language-server: $schema=../../../schema/topology.schema.json\n"

#: Invalid corpus files the editor cannot flag, besides those the schema cannot (test_corpus).
EDITOR_CANNOT = {
    "bad-regex.yaml": "yaml-language-server does not check `format: regex` (check-jsonschema does)",
    "empty-file.yaml": "yaml-language-server does not validate an empty document",
}


def _server_command() -> list[str] | None:
    explicit = os.environ.get("RUNNERCONF_YAML_LANGUAGE_SERVER")
    candidates = [explicit] if explicit else []
    candidates += [str(ROOT / ".ci" / "node" / "node_modules" / ".bin" / "yaml-language-server"), shutil.which("yaml-language-server")]
    for c in candidates:
        if c and Path(c).exists() and shutil.which("node"):
            return [c, "--stdio"]
    return None


@pytest.fixture(scope="module")
def server() -> Iterator[LanguageServer]:
    command = _server_command()
    if command is None:
        message = "yaml-language-server is not installed (npm install yaml-language-server; .ci/run installs it)"
        if os.environ.get("RUNNERCONF_REQUIRE_EDITOR") == "1":
            pytest.fail(message + " and RUNNERCONF_REQUIRE_EDITOR=1 says the editor tests must run", pytrace=False)
        pytest.skip(message)
    ls = LanguageServer(command, {"validate": True, "hover": True, "completion": True, "schemas": {}})
    ls.start(ROOT.as_uri())
    yield ls
    ls.close()


def _open(server: LanguageServer, directory: Path, name: str, text: str) -> str:
    uri = (directory / name).as_uri()  # a document of the editor's: it need not exist on disk
    server.open(uri, text)
    return uri


def test_example_files_are_clean_with_their_own_modeline(server: LanguageServer) -> None:
    files = sorted((ROOT / "configs").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))
    assert all(f.read_text().startswith("# yaml-language-server: $schema=../schema/topology.schema.json") for f in files)
    uris = [_open(server, f.parent, f.name, f.read_text()) for f in files]
    found = server.diagnostics(uris)
    assert {uri: d for uri, d in found.items() if d} == {}


def test_the_valid_corpus_is_clean(server: LanguageServer) -> None:
    uris = [_open(server, p.parent, "editor-" + p.name, MODELINE + p.read_text()) for p in sorted((CORPUS / "valid").glob("*.yaml"))]
    found = server.diagnostics(uris)
    assert {uri: [d["message"] for d in ds] for uri, ds in found.items() if ds} == {}


#: For some files, what the editor says (line in the file as written, without the modeline).
EXPECTED = {
    "restart-maybe.yaml": (2, 'Value is not accepted. Valid values: "no", "on-failure", "always".'),
    "bad-condition.yaml": (2, 'Value is not accepted. Valid values: "ready", "healthy", "completed".'),
    "unknown-type.yaml": (2, 'Value is not accepted. Valid values: "command", "pipecat_pipeline", "pipeline".'),
    "backoff-typo.yaml": (2, "Property inital is not allowed."),
    "yes-is-not-true.yaml": (1, 'Incorrect type. Expected "boolean".'),
    "quoted-number.yaml": (1, 'Incorrect type. Expected "integer".'),
    "version-2.yaml": (1, "Value must be 1."),
    "pipeline-no-processors.yaml": (2, 'Missing property "processors".'),
    "zero-backoff.yaml": (2, "Value is below the exclusive minimum of 0."),
    "command-empty.yaml": (2, "Array has too few items. Expected 1 or more."),
}
#: What the editor said before the kind keys chose the branch: every branch's complaint.
MISLEADING = ('Expected "null"', "Property command is not allowed", "Property restart is not allowed", "Property type is not allowed")


def test_the_invalid_corpus_is_flagged_with_the_real_mistake(server: LanguageServer) -> None:
    from tests.config.test_corpus import SCHEMA_CANNOT_EXPRESS

    files = sorted((CORPUS / "invalid").glob("*.yaml"))
    uris = {p.name: _open(server, p.parent, "editor-" + p.name, MODELINE + p.read_text()) for p in files}
    found = server.diagnostics(list(uris.values()))
    silent = sorted(name for name, uri in uris.items() if not found[uri])
    assert silent == sorted({*SCHEMA_CANNOT_EXPRESS, *EDITOR_CANNOT})
    for name, (line, message) in EXPECTED.items():
        shown = [(d["range"]["start"]["line"] - 1, d["message"]) for d in found[uris[name]]]
        assert (line, message) in shown, (name, shown)
    for name, uri in uris.items():
        assert not any(bad in d["message"] for d in found[uri] for bad in MISLEADING), (name, found[uri])


def _items(result: object) -> list[str]:
    items = result["items"] if isinstance(result, dict) else result
    return sorted(i["label"] for i in items or [])  # type: ignore[union-attr]


def test_completion_follows_the_kind_and_offers_choices(server: LanguageServer, tmp_path: Path) -> None:
    text = (
        "# yaml-language-server: $schema=" + (ROOT / "schema" / "topology.schema.json").as_uri() + "\n"
        "runner:\n  handle_sigterm: \n  on_signal: \n"
        "workers:\n  - name: c\n    type: command\n    command: x\n    restart: \n    \n"
    )
    uri = _open(server, tmp_path, "topology.yaml", text)
    server.diagnostics([uri])
    complete = lambda line, col: _items(server.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": line, "character": col}}))  # noqa: E731
    assert complete(2, 18) == ["false", "true"]
    assert complete(3, 13) == ["cancel", "end"]
    assert complete(8, 13) == ['"no"', "always", "on-failure"]
    keys = complete(9, 4)
    assert {"stop_signal", "healthcheck", "ready_line", "backoff", "max_restarts"} <= set(keys)
    assert "restart" not in keys  # already there
    assert not {"processors", "class", "factory"} & set(keys)  # a command worker's keys only


def test_hover_shows_each_description_once(server: LanguageServer, tmp_path: Path) -> None:
    text = (
        "# yaml-language-server: $schema=" + (ROOT / "schema" / "topology.schema.json").as_uri() + "\n"
        "workers:\n  - name: c\n    type: command\n    command: x\n    restart: always\n"
    )
    uri = _open(server, tmp_path, "hover.topology.yaml", text)
    server.diagnostics([uri])
    hover = server.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 5, "character": 6}})
    value = hover["contents"]["value"]
    description = "Restart policy: no, on-failure (non-zero exit, or unhealthy) or always."
    assert value.count(description) == 1, value
    assert value.count("####") == 1, value  # one heading: the model's title, not a title per property
