"""The validator kept between runs (runnerconf.config.validator_cache) answers as the models do.

Every document of the corpus, the examples and a few made here to reach each rule is validated
three ways -- pydantic's own validator, the one made from the kept file, and the checker that
makes no models -- and they must agree: the same models (or the same errors), and the checker
accepting exactly what the models accept. Then what makes a file unusable (changed sources, a
name it may not use, someone else's directory) and what must hold without one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from runnerconf.config import validator_cache
from runnerconf.config.document import read_topology_data
from runnerconf.config.errors import TopologyError
from runnerconf.config.models import Topology

from ..helpers import ROOT

CORPUS = ROOT / "tests" / "corpus"
ENV = {"BOT_NAME": "bot", "AUTO_END": "false", "AUTO_END_BAD": "maybe"}
FILES = sorted([*(CORPUS / "valid").glob("*.yaml"), *(CORPUS / "invalid").glob("*.yaml"), *(ROOT / "configs").glob("*.yaml")])

# Documents that reach each rule the schema names, valid and not.
MADE = {
    "backoff-factor-low": "workers:\n  - {name: p, type: command, command: 'true', restart: always, backoff: {factor: 0.5}}\n",
    "backoff-factor-ok": "workers:\n  - {name: p, type: command, command: 'true', restart: always, backoff: {factor: 1.5}}\n",
    "max-restarts-negative": "workers:\n  - {name: p, type: command, command: 'true', restart: always, max_restarts: -1}\n",
    "depends-on-names": "workers:\n  - {name: a, class: 'm:A'}\n  - {name: b, class: 'm:B', depends_on: [a, {name: a, condition: completed}]}\n",
    "depends-on-bad-name": "workers:\n  - {name: a, class: 'm:A'}\n  - {name: b, class: 'm:B', depends_on: ['a b']}\n",
    "processors": "workers:\n  - {name: p, type: pipeline, processors: ['m:f', {call: 'm:g', params: {x: 1}}]}\n",
    "processor-number": "workers:\n  - {name: p, type: pipeline, processors: [5]}\n",
    "redis-signed": "bus: {type: redis, secret: 0123456789abcdef0123}\nrunner: {name: r}\nworkers: []\n",
    "redis-two-secrets": "bus: {type: redis, secret: 0123456789abcdef0123, secret_file: /s}\nrunner: {name: r}\nworkers: []\n",
    "redis-data-types-no-wire": "bus: {type: redis, data_types: [a.B]}\nrunner: {name: r}\nworkers: []\n",
    "bus-unknown": "bus: {type: kafka}\nworkers: []\n",
    "worker-string": "workers: [nothing]\n",
    "worker-two-kinds": "workers:\n  - {name: a, class: 'm:A', factory: 'm:f'}\n",
    "command-list": "workers:\n  - {name: c, type: command, command: [echo, 1, 2.5]}\n",
    "command-bool": "workers:\n  - {name: c, type: command, command: [echo, true]}\n",
    "healthcheck-one": "workers:\n  - {name: c, type: command, command: 'true', healthcheck: {tcp: '127.0.0.1:1'}}\n",
    "params-name": "workers:\n  - {name: a, class: 'm:A', params: {name: x}}\n",
    "runners": "bus: {type: redis}\nrunners:\n  - {name: r1, workers: [{name: a, class: 'm:A'}]}\n  - {name: r2}\n",
    "placeholders": "workers:\n  - {name: c, type: command, command: 'true', restart: always, max_restarts: '${N}', backoff: {factor: '${F}'}}\n",
}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache directory of this test, and the module's memory of validators cleared."""
    directory = tmp_path / "cache"
    monkeypatch.setenv(validator_cache.ENV, str(directory))
    validator_cache.validator.cache_clear()
    validator_cache.checker.cache_clear()
    yield directory
    validator_cache.validator.cache_clear()
    validator_cache.checker.cache_clear()


def documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in FILES:
        try:
            data, _, _, _ = read_topology_data(path, environ=ENV)
        except TopologyError:
            continue  # no document to validate (bad YAML)
        yield path.name, data
    for name, text in MADE.items():
        yield name, read_topology_data(text, environ={})[0]
    for name, text in MADE.items():  # --no-interpolate: placeholders stand for values
        yield f"{name} (placeholders)", read_topology_data(text, environ={}, interpolation=False)[0]


def outcome(run: Any) -> tuple[str, Any]:
    try:
        return "ok", run().model_dump(warnings=False)
    except ValidationError as exc:
        return "invalid", exc.errors(include_url=False)


def test_kept_validator_and_checker_agree_with_the_models(cache: Path) -> None:
    kept = validator_cache.validator(Topology)
    assert kept is not None and list(cache.glob("*.json"))  # made and written on the first call
    validator_cache.validator.cache_clear()
    kept = validator_cache.validator(Topology)  # this one is read from the file
    check = validator_cache.checker()
    assert check is not None
    counts = {"ok": 0, "invalid": 0}
    for name, data in documents():
        expected = outcome(lambda: Topology.model_validate(data))
        assert outcome(lambda: kept.validate_python(data)) == expected, name
        try:
            check.validate_python(data)
            checked = "ok"
        except Exception:
            checked = "invalid"
        assert checked == expected[0], name
        counts[expected[0]] += 1
    assert counts["ok"] > 20 and counts["invalid"] > 40  # both sides were really reached


def test_the_checker_makes_no_models_and_imports_no_pydantic(cache: Path) -> None:
    validator_cache.validator(Topology)  # writes the file
    probe = (
        "import json, sys\n"
        "from runnerconf.config.document import read_topology_data\n"
        "from runnerconf.config.quick import quick_problems\n"
        "data, source, uses, problems = read_topology_data('configs/legacy.yaml')\n"
        "found = quick_problems(data, source, problems)\n"
        "print(json.dumps({'found': None if found is None else [p.code for p in found],\n"
        "                  'pydantic': 'pydantic' in sys.modules, 'models': 'runnerconf.config.models' in sys.modules}))\n"
    )
    env = {**os.environ, validator_cache.ENV: str(cache)}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == {"found": ["deprecated-key"], "pydantic": False, "models": False}


def test_changed_sources_are_a_miss_and_the_file_is_made_again(cache: Path) -> None:
    validator_cache.validator(Topology)
    (path,) = cache.glob("*.json")
    document = json.loads(path.read_text())
    key = next(k for k in document["sources"] if k.endswith("worker_models.py"))
    document["sources"][key] = "0" * 16
    path.write_text(json.dumps(document))
    validator_cache.validator.cache_clear()
    assert validator_cache.checker() is None  # stale: the models must decide
    assert validator_cache.validator(Topology) is not None
    assert json.loads(path.read_text())["sources"][key] != "0" * 16  # written again


@pytest.mark.parametrize(
    "name",
    ["builtins:eval", "os:system", "runnerconf.config.modules:import_object", "pydantic._internal._validators:import_string", "nonsense"],
)
def test_a_name_the_schema_may_not_use_is_refused(cache: Path, name: str) -> None:
    validator_cache.validator(Topology)
    (path,) = cache.glob("*.json")
    text = path.read_text()
    assert '"runnerconf.config.checks:scalar"' in text
    path.write_text(text.replace('"runnerconf.config.checks:scalar"', json.dumps(name)))
    validator_cache.validator.cache_clear()
    assert validator_cache.checker() is None
    kept = validator_cache.validator(Topology)  # made again from the models
    assert kept is not None and '"runnerconf.config.checks:scalar"' in path.read_text()
    assert kept.validate_python({"workers": []}).workers == []


def test_a_directory_others_may_write_is_not_used(cache: Path) -> None:
    validator_cache.validator(Topology)
    (path,) = cache.glob("*.json")
    cache.chmod(0o777)
    validator_cache.validator.cache_clear()
    assert validator_cache.checker() is None
    assert validator_cache.validator(Topology) is None  # neither read nor written: pydantic's own is used
    assert validator_cache.validate(Topology, {"workers": []}).workers == []
    cache.chmod(0o700)
    path.chmod(0o666)
    validator_cache.checker.cache_clear()
    assert validator_cache.checker() is None


def test_no_directory_keeps_nothing_and_validates_all_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    for value in ("", str(blocked / "cache")):
        monkeypatch.setenv(validator_cache.ENV, value)
        validator_cache.validator.cache_clear()
        validator_cache.checker.cache_clear()
        assert validator_cache.checker() is None
        assert validator_cache.validate(Topology, {"workers": [{"name": "a", "class": "m:A"}]}).workers[0].name == "a"
    validator_cache.validator.cache_clear()
    validator_cache.checker.cache_clear()
    assert list(tmp_path.iterdir()) == [blocked]


def test_a_model_made_at_run_time_is_not_kept(cache: Path) -> None:
    from runnerconf.config.kinds import BUILTIN, WorkerKind
    from runnerconf.config.models import topology_model
    from runnerconf.config.worker_models import PipelineWorkerConfig

    model = topology_model({**BUILTIN, "extra": WorkerKind("extra", PipelineWorkerConfig, "m:W", "a package")})
    assert model is not Topology
    assert validator_cache.validator(model) is None
    assert not cache.exists() or not list(cache.glob("*.json"))


def cli(*args: str, cache: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, validator_cache.ENV: cache}
    return subprocess.run([sys.executable, "-m", "runnerconf", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_validate_says_the_same_with_and_without_a_kept_validator(tmp_path: Path) -> None:
    files = [str(p) for p in sorted((CORPUS / "invalid").glob("*.yaml"))[:12]] + ["configs/legacy.yaml", "configs/hello.yaml"]
    for fmt in ("text", "json"):
        without = cli("validate", "--format", fmt, *files, cache="")
        cold = cli("validate", "--format", fmt, *files, cache=str(tmp_path / "c"))
        warm = cli("validate", "--format", fmt, *files, cache=str(tmp_path / "c"))
        assert without.returncode == cold.returncode == warm.returncode == 1
        assert without.stdout == cold.stdout == warm.stdout and ":" in without.stdout
        assert not without.stderr and not warm.stderr
    for path in ("configs/hello.yaml", "configs/legacy.yaml"):  # valid: answered by the checker when warm
        outputs = {cli("validate", path, cache=c).stdout for c in ("", str(tmp_path / "c"))}
        assert len(outputs) == 1 and "0 error(s)" in outputs.pop()


def test_where_files_are_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(validator_cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert validator_cache.cache_dir() == tmp_path / "runnerconf"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert validator_cache.cache_dir() == tmp_path / "home" / ".cache" / "runnerconf"
    monkeypatch.delenv("HOME")
    monkeypatch.delenv("XDG_CACHE_HOME")
    import pwd

    monkeypatch.setattr(pwd, "getpwuid", lambda uid: (_ for _ in ()).throw(KeyError(uid)))
    assert validator_cache.cache_dir() is None  # never a directory relative to where it runs
    monkeypatch.setenv(validator_cache.ENV, "")
    assert validator_cache.cache_dir() is None


@pytest.mark.parametrize("damage", ["truncated", "not json", "a symlink", "another format"])
def test_a_damaged_file_is_made_again(cache: Path, damage: str) -> None:
    validator_cache.validator(Topology)
    (path,) = cache.glob("*.json")
    text = path.read_text()
    if damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "not json":
        path.write_bytes(b"\xff\x00garbage")
    elif damage == "a symlink":
        (cache / "elsewhere.json").write_text(text)
        path.unlink()
        path.symlink_to(cache / "elsewhere.json")
    else:
        path.write_text(text.replace('"format":2', '"format":1', 1))
    validator_cache.validator.cache_clear()
    assert validator_cache.checker() is None
    assert validator_cache.validator(Topology) is not None
    assert not path.is_symlink() and json.loads(path.read_text())["format"] == validator_cache.FORMAT
    validator_cache.checker.cache_clear()
    assert validator_cache.checker() is not None  # the file made again is used
