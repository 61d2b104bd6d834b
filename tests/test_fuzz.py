"""Property tests: stack configs, stack files and manifest files mutated at random.

Each property allows exactly one way to refuse input, the command's clean error (``pulumi.RunError``
or exit status 2), and fails on any other exception. Where a mutation certainly makes a config
invalid (a garbage key, a value of another JSON type than the one it replaced, a misspelt
namespace), accepting it fails the test too: that oracle reads only the mutation, never the
settings code. Every input that once failed lives in tests/corpus/ and is replayed below.

Derandomized and without deadlines, so a run is reproducible and never flaky; FUZZ_EXAMPLES raises
the budget for a longer exploration (``FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh_platform import settings as config
from mesh_platform.loader import parse
from offline import engine
from offline.verify import __main__ as verify_cli

CORPUS = Path(__file__).parent / "corpus"
BUDGET = int(os.environ.get("FUZZ_EXAMPLES", "0"))


def budget(default: int) -> Any:
    return settings(
        max_examples=BUDGET or default,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


# --- seeds: every stack file's config, and one with every field written out ---------------------


def _stack_configs() -> dict[str, dict[str, Any]]:
    seeds = {}
    for path in sorted((engine.ROOT / "stacks").glob("Pulumi.*.yaml")):
        data = yaml.safe_load(path.read_text())["config"]
        seeds[path.stem.removeprefix("Pulumi.")] = {k.split(":", 1)[1]: v for k, v in data.items()}
    full = config.Settings(stack="full").model_dump(mode="json", by_alias=True, exclude={"stack"})
    seeds["full"] = full
    return seeds


SEEDS = _stack_configs()
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=6,
)


def _kind(value: Any) -> str:
    """The JSON type of a value (an int and a float are both numbers only for the oracle below)."""
    for name, types in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", list), ("dict", dict)):
        if isinstance(value, types):
            return name
    return "null"


def certainly_invalid(old: Any, new: Any) -> bool:
    """True when replacing ``old`` by ``new`` can never give a valid config, whatever the field.

    Conservative on purpose: null (an optional field unset) and int → float (a float field holding
    a whole number) are never counted.
    """
    before, after = _kind(old), _kind(new)
    if after == "null" or before == after or before == "null":
        return False
    if before == "int" and after == "float":
        return False
    return not (before == "float" and after == "int")


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value in ``tree`` (dict keys and list indices)."""
    out = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
    for k, v in items:
        out.append((*prefix, k))
        out += _paths(v, (*prefix, k))
    return out


def _get(tree: Any, path: tuple) -> Any:
    for p in path:
        tree = tree[p]
    return tree


@st.composite
def mutated_configs(draw) -> tuple[str, dict[str, Any], bool, str]:
    """(stack, config, certainly invalid?, what was done) from one to three mutations of a seed."""
    stack = draw(st.sampled_from(sorted(SEEDS)))
    raw = copy.deepcopy(SEEDS[stack])
    # What makes the result certainly invalid, each kept as (path, value put there): it counts only
    # while a later mutation has not replaced or removed it again.
    witnesses: list[tuple[tuple, Any]] = []
    done = []
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(raw)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get(raw, path[:-1]), path[-1]
        op = draw(st.sampled_from(["replace", "replace", "delete", "garbage-key", "typo-key", "duplicate-item"]))
        if op == "replace":
            new = draw(JSON_VALUES)
            # Against the seed's value there, not one an earlier mutation put there.
            original = _get(SEEDS[stack], path) if _exists(SEEDS[stack], path) else None
            if _exists(SEEDS[stack], path) and certainly_invalid(original, new):
                witnesses.append((path, new))
            parent[key] = new
        elif op == "delete":
            del parent[key]
        elif op == "garbage-key" and isinstance(parent, dict):
            garbage = f"zz{draw(st.text('abcxyz', min_size=1, max_size=5))}"
            parent[garbage] = draw(JSON_VALUES)
            witnesses.append(((*path[:-1], garbage), parent[garbage]))
        elif op == "typo-key" and isinstance(parent, dict) and isinstance(key, str) and len(key) > 3:
            i = draw(st.integers(0, len(key) - 1))
            typo = key[:i] + key[i + 1 :]
            if typo not in parent and typo not in ALIASES:
                parent[typo] = parent.pop(key)
                witnesses.append(((*path[:-1], typo), parent[typo]))
        elif op == "duplicate-item" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        done.append(f"{op} {'.'.join(map(str, path))}")
    return stack, raw, any(_still(raw, path, value) for path, value in witnesses), "; ".join(done)


def _exists(tree: Any, path: tuple) -> bool:
    try:
        _get(tree, path)
        return True
    except (KeyError, IndexError, TypeError):
        return False


def _still(tree: Any, path: tuple, value: Any) -> bool:
    """Whether ``value`` (the very object put there) is still at ``path``."""
    try:
        return _get(tree, path) is value
    except (KeyError, IndexError, TypeError):
        return False


def _aliases() -> set[str]:
    names: set[str] = set()
    todo: list[Any] = [config.Settings]
    while todo:
        model = todo.pop()
        for name, field in model.model_fields.items():
            names.add(field.alias or name)
            for t in (*getattr(field.annotation, "__args__", ()), field.annotation):
                if isinstance(t, type) and issubclass(t, config.BaseModel) and t not in todo:
                    todo.append(t)
    return names


ALIASES = _aliases()
TRIED: dict[str, int] = {}


def _count(name: str) -> None:
    TRIED[name] = TRIED.get(name, 0) + 1


# --- properties --------------------------------------------------------------------------------


@budget(300)
@given(mutated_configs())
def test_mutated_stack_configs_are_accepted_or_refused_cleanly(case) -> None:
    stack, raw, invalid, done = case
    _count("config")
    try:
        parse(raw, stack)
    except pulumi.RunError as err:
        assert str(err).startswith("invalid stack configuration:\n  mesh-platform"), str(err)
        return
    assert not invalid, f"accepted a certainly invalid config ({done}): {json.dumps(raw)[:500]}"


NAMESPACE_TYPOS = st.sampled_from(
    ["mesh-platfrom", "mesh_platform", "meshplatform", "mesh-platform-", "Mesh-platform", "kubernets", "", "aws-"]
)


@budget(60)
@given(stack=st.sampled_from(sorted(SEEDS)), namespace=NAMESPACE_TYPOS, data=st.data())
def test_a_misspelt_namespace_in_a_stack_file_is_refused(tmp_path_factory, stack, namespace, data) -> None:
    _count("namespace")
    raw = SEEDS[stack]
    bad = data.draw(st.sampled_from(sorted(raw)))
    keys = {(f"{namespace}:{k}" if namespace else k) if k == bad else f"mesh-platform:{k}": v for k, v in raw.items()}
    path = tmp_path_factory.mktemp("ns") / "Pulumi.fuzz.yaml"
    path.write_text(yaml.safe_dump({"config": keys}))
    with pytest.raises(pulumi.RunError, match="did you mean"):
        engine.settings(path, "fuzz")


LINE_OPS = st.sampled_from(["delete", "duplicate", "indent", "dedent", "insert", "truncate", "swap"])


@budget(200)
@given(stack=st.sampled_from(sorted(p.name for p in (engine.ROOT / "stacks").glob("Pulumi.*.yaml"))), data=st.data())
def test_mutated_stack_file_text_is_accepted_or_refused_cleanly(tmp_path_factory, stack, data) -> None:
    _count("stack-file")
    lines = (engine.ROOT / "stacks" / stack).read_text().splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(LINE_OPS)
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = "  " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i][2:]
        elif op == "insert":
            lines.insert(i, data.draw(st.text(max_size=20)))
        elif op == "truncate":
            lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
        else:
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    path = tmp_path_factory.mktemp("text") / "Pulumi.fuzz.yaml"
    path.write_text("\n".join(lines) + "\n")
    with contextlib.suppress(pulumi.RunError):
        engine.settings(path, "fuzz")


@budget(8)
@given(mutated_configs())
def test_accepted_mutations_render_or_fail_cleanly(case) -> None:
    """What the settings accept, the whole program must run with (components included)."""
    stack, raw, _, _ = case
    _count("render")
    try:
        parse(raw, stack)
    except pulumi.RunError:
        return
    cfg = {f"mesh-platform:{k}": json.dumps(v) for k, v in raw.items()}
    with contextlib.suppress(pulumi.RunError):
        engine.run(stack if stack != "full" else "fuzz", config=cfg)


# --- manifest files for `python -m offline.verify --manifests` ------------------------------------


@pytest.fixture(scope="module")
def rendered(stack) -> list[dict[str, Any]]:
    return stack("dev").manifests()


def _mutate_manifest(data, obj: dict[str, Any]) -> dict[str, Any]:
    """Mutate below the object's identity (apiVersion, kind, metadata.name stay)."""
    obj = copy.deepcopy(obj)
    paths = [p for p in _paths(obj) if p[0] not in ("apiVersion", "kind") and p != ("metadata", "name") and p != ("metadata",)]
    for _ in range(data.draw(st.integers(1, 3))):
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        try:
            parent, key = _get(obj, path[:-1]), path[-1]
            if data.draw(st.booleans()):
                parent[key] = data.draw(JSON_VALUES)
            else:
                del parent[key]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the way there
    return obj


# Each example runs network-config-analyzer (about a second): a small budget per run.
@budget(12)
@given(data=st.data())
def test_mutated_manifests_are_verified_or_refused_cleanly(tmp_path_factory, rendered, data, capsys) -> None:
    _count("manifests")
    picked = data.draw(st.lists(st.sampled_from(range(len(rendered))), min_size=1, max_size=6, unique=True))
    docs = [_mutate_manifest(data, rendered[i]) if data.draw(st.booleans()) else rendered[i] for i in picked]
    path = tmp_path_factory.mktemp("manifests") / "fuzz.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    code = verify_cli.main(["--manifests", str(path), "--format", "json"])
    assert code in (0, 1, 2)
    capsys.readouterr()


# --- the corpus: every input that once failed --------------------------------------------------


def _corpus(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).glob("*.yaml"))


@pytest.mark.parametrize("path", _corpus("stack-config"), ids=lambda p: p.name)
def test_corpus_stack_configs_are_refused(path: Path, capsys) -> None:
    with pytest.raises(pulumi.RunError):
        engine.settings(path, "corpus")
    from offline import render

    assert render.main(["--config-file", str(path)]) in (1, 2)
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("path", _corpus("manifests"), ids=lambda p: p.name)
def test_corpus_manifests_end_cleanly(path: Path, capsys) -> None:
    assert verify_cli.main(["--manifests", str(path), "--format", "json"]) == 2
    err = capsys.readouterr().err
    # The last line is the command's; network-config-analyzer, run in a worker, may print its own first.
    assert err.splitlines()[-1].startswith("error: ") and "Traceback" not in err, err


def test_the_corpus_is_there() -> None:
    assert _corpus("stack-config") and _corpus("manifests")


def teardown_module() -> None:
    if os.environ.get("FUZZ_REPORT"):
        Path(os.environ["FUZZ_REPORT"]).write_text(json.dumps(TRIED) + "\n")
