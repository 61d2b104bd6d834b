"""Reading a stack's config, and reporting everything wrong with it at once.

``load()`` reads the stack's config from the Pulumi runtime; ``parse()`` validates the
``mesh-platform:*`` values against the schema (mesh_platform/settings.py). Every problem is
collected before anything is raised, one line each naming the key, the bad value and what is
allowed, and all of them go out as one ``pulumi.RunError``: ``pulumi up`` prints one clean
message, no traceback, and a user fixes a stack file in one pass. The problems come in three kinds:

1. a key outside the project's and the providers' namespaces (``mesh-platfrom:cluster``);
2. every value that breaks its field's type, unknown keys included (pydantic, in one pass);
3. every cross-field ``@rule`` of the schema that the values break.

Pydantic builds no model once a field fails, so for 3 the loader removes each failed value from
its copy of the config (a missing required key takes its whole object, a list item only itself)
and validates again until the rest passes. Every rule then runs on that tree, except a rule that
reads a removed key: it would judge a default, not what the user wrote. Keys in the messages are
always the user's own, list indices included.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from mesh_platform.settings import Settings, rules, run_date
from mesh_platform.versions import KUBERNETES_VERSION

PROJECT = "mesh-platform"
#: The stack's grouped config keys (``mesh-platform:<key>``), as ``Settings`` declares them; anything
#: else is rejected.
KNOWN_KEYS = tuple(f.alias or n for n, f in Settings.model_fields.items() if n != "stack")
#: Config namespaces a stack file may use besides the project's: Pulumi's own (``pulumi:tags``,
#: ``pulumi:disable-default-providers``) and those of the providers this program uses
#: (requirements.txt), whose default providers read ``<provider>:<key>`` (``aws:region``,
#: ``kubernetes:context``). Any other namespace is a typo, never silently ignored.
PROVIDER_NAMESPACES = ("pulumi", "kubernetes", "aws", "awsx", "eks", "command")

#: A place in the config: object keys and list indices, as the user wrote them.
Path = tuple[str | int, ...]


def load() -> Settings:
    """Read this stack's config from the Pulumi runtime and validate it; raises ``pulumi.RunError``."""
    config = {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    raw: dict[str, Any] = {}
    for full_key, value in config.items():
        project, _, key = full_key.partition(":")
        if project == PROJECT:
            # Objects arrive JSON-encoded; anything else stays a string and is refused by its type.
            raw[key] = _decoded(value)
    settings, lines = validate(raw, pulumi.get_stack())
    return _raise_if(namespace_errors(config) + lines, settings)


def parse(raw: Mapping[str, Any], stack: str, today: dt.date | None = None) -> Settings:
    """Validate already-decoded config (``{"cluster": {...}, ...}``); raises ``pulumi.RunError``."""
    settings, lines = validate(raw, stack, today)
    return _raise_if(lines, settings)


def validate(raw: Mapping[str, Any], stack: str, today: dt.date | None = None) -> tuple[Settings | None, list[str]]:
    """The settings of ``raw`` and every problem with it, one line each (no settings if any).

    ``today`` is the date of the run, which the EKS support calendar is read at: unset, today's
    or the one ``$MESH_PLATFORM_RUN_DATE`` names (``settings.run_date``)."""
    try:
        context = {"run_date": today or run_date()}
    except ValueError as err:
        return None, [str(err)]
    lines = [f"{PROJECT}:{key}: unknown key; allowed: {', '.join(KNOWN_KEYS)}" for key in sorted(set(raw) - set(KNOWN_KEYS))]
    known = {k: v for k, v in raw.items() if k in KNOWN_KEYS and v is not None}
    tree = _Pruned({"stack": stack, **json.loads(json.dumps(known))})
    settings: Settings | None = None
    while settings is None:
        try:
            settings = Settings.model_validate_json(json.dumps(tree.config), context=context)
        except ValidationError as err:
            if not tree.removed:
                lines += _error_lines(err)  # the user's own errors; later rounds only see the removals
            if not tree.remove(err.errors()):
                break  # the stack itself failed: no tree left for the rules
    if settings is not None:
        lines += [f"{PROJECT}:{key}: {message}" for key, message in _rule_problems(settings, tree)]
    return (None if lines else settings), lines


def _raise_if(lines: list[str], settings: Settings | None) -> Settings:
    if lines or settings is None:
        raise pulumi.RunError("\n  ".join(["invalid stack configuration:", *lines]))
    return settings


def _decoded(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def namespace_errors(keys: Iterable[str]) -> list[str]:
    """One line for each stack config key outside the project's and the providers' namespaces.

    ``mesh-platfrom:cluster`` or an unprefixed ``cluster`` would otherwise be ignored and every
    default deployed; each line names the key it most probably meant.
    """
    meant = [f"{PROJECT}:{k}" for k in KNOWN_KEYS]
    lines = []
    for key in keys:
        namespace, sep, name = key.partition(":")
        if sep and namespace in (PROJECT, *PROVIDER_NAMESPACES):
            continue
        guesses = difflib.get_close_matches(f"{PROJECT}:{key}" if not sep else key, meant, n=1, cutoff=0.6)
        if not guesses and sep:
            # A misspelt provider (kubernets:context) keeps its key name.
            guesses = [f"{ns}:{name}" for ns in difflib.get_close_matches(namespace, PROVIDER_NAMESPACES, n=1, cutoff=0.6)]
        hint = f"did you mean {guesses[0]}?" if guesses else f"project keys are {PROJECT}:<{'|'.join(KNOWN_KEYS)}>"
        what = "has no namespace" if not sep else f"namespace {namespace!r} is neither this project's nor a provider's"
        lines.append(f"{key}: {what} ({PROJECT}, {', '.join(PROVIDER_NAMESPACES)}); {hint}")
    return lines


# --- the config with every failed value removed -------------------------------------------------


class _Pruned:
    """The config being validated, less each value that failed, with where each was in the user's."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        #: The user's paths of what was removed, for the rules to stay clear of.
        self.removed: list[Path] = []
        #: For each list with items removed (by the user's path): the user's index of each item left.
        self._kept: dict[Path, list[int]] = {}

    def original(self, at: Path, index: int) -> int:
        """The user's index of what is now item ``index`` of the list at ``at``."""
        kept = self._kept.get(at)
        return index if kept is None else kept[index]

    def remove(self, errors: Iterable[Mapping[str, Any]]) -> bool:
        """Remove what each of pydantic's ``errors`` is about; False if that is the whole config."""
        targets = {self._target(e["loc"]) for e in errors}
        if () in targets:
            return False
        for path in sorted(targets, key=len):
            if not any(path[: len(p)] == p for p in self.removed):  # not inside one removed just now
                self._delete(path)
                self.removed.append(path)
        return True

    def _target(self, loc: tuple[Any, ...]) -> Path:
        """The user's path of what to remove for an error at ``loc``: the bad value, or the object
        that lacks a required key (pydantic's ``[key]`` marker, after a bad mapping key, stops at
        the entry)."""
        node: Any = self.config
        path: Path = ()
        for part in loc:
            if isinstance(node, dict) and isinstance(part, str) and part in node:
                node, path = node[part], (*path, part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node, path = node[part], (*path, self.original(path, part))
            else:
                break
        return path

    def _delete(self, path: Path) -> None:
        node: Any = self.config
        at: Path = ()
        for part in path[:-1]:
            node = node[self._current(at, part)] if isinstance(node, list) else node[part]
            at = (*at, part)
        if isinstance(node, list):
            kept = self._kept.setdefault(at, list(range(len(node))))
            i = kept.index(path[-1])  # type: ignore[arg-type]
            del node[i], kept[i]
        else:
            del node[path[-1]]
        self._kept = {p: k for p, k in self._kept.items() if p[: len(path)] != path}

    def _current(self, at: Path, index: Any) -> int:
        kept = self._kept.get(at)
        return index if kept is None else kept.index(index)


def _parts(key: str) -> Path:
    """``routes[].destinations[].subset`` → ``("routes", "[]", "destinations", "[]", "subset")``."""
    return tuple(re.findall(r"\[\]|[^.\[\]]+", key))


def _overlap(read: Path, removed: Path) -> bool:
    """Whether a key a rule reads is, holds or lies inside a removed one (``[]`` is any item; a key
    the user wrote in snake_case is the camelCase one the rule names)."""
    return all(
        r == (to_camel(x) if isinstance(x, str) else x) or (r == "[]" and isinstance(x, int))
        for r, x in zip(read, removed, strict=False)
    )


def _rule_problems(model: BaseModel, tree: _Pruned, at: Path = ()) -> Iterator[tuple[str, str]]:
    """Every problem the rules find below and on ``model`` (at ``at``): the inner models first."""
    for name, field in type(model).model_fields.items():
        key, value = field.alias or name, getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _rule_problems(value, tree, (*at, key))
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _rule_problems(item, tree, (*at, key, tree.original((*at, key), i)))
    for check in rules(type(model)):
        reads = [(*at, *_parts(r)) for r in check.reads]  # type: ignore[attr-defined]
        if any(_overlap(r, removed) for r in reads for removed in tree.removed):
            continue
        for key, message in check(model):
            where = _loc(at)
            yield (f"{where}.{key}" if where and key else where or key), message


# --- pydantic's errors as lines -----------------------------------------------------------------


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad mapping key: the key itself is named already
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that holds the last key of ``loc``."""
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = _field(model, part)
        if field is None:
            return None
        ann = field.annotation
        nested = [c for c in (*typing.get_args(ann), ann) if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def _field(model: type[BaseModel], key: Any) -> FieldInfo | None:
    return next((f for n, f in model.model_fields.items() if key in (f.alias, n)), None)


def _error_lines(err: ValidationError) -> list[str]:
    lines = []
    for e in err.errors():
        key = f"{PROJECT}:{_loc(e['loc'])}" if e["loc"] else f"{PROJECT} config"
        model = _model_at(e["loc"]) if e["loc"] else None
        if e["type"] == "extra_forbidden":
            allowed = sorted(f.alias or n for n, f in model.model_fields.items() if n != "stack") if model else []
            lines.append(f"{key}: unknown key; allowed here: {', '.join(allowed)}")
            continue
        msg = e["msg"].removeprefix("Value error, ")
        field = _field(model, e["loc"][-1]) if model else None
        if e["type"] == "missing" and field is not None and field.description:
            # What the key is for, from its docstring in the schema (without its reST quotes).
            what = " ".join(field.description.replace("``", "").split()).rstrip(".")
            msg += f": {what[0].lower() + what[1:] if what[1:2].islower() else what}"
        if e["loc"][-1:] == ("kubernetesVersion",) and isinstance(e.get("input"), int | float):
            # YAML reads 1.30 as the number 1.3: only a quoted version survives.
            msg += f'; write it quoted, such as kubernetesVersion: "{KUBERNETES_VERSION}" (unquoted, 1.30 would be 1.3)'
        given = e.get("input")
        # A missing key's input is the object that lacks it: echoing that object (for a root
        # problem, the whole stack config) would bury the line.
        got = "" if isinstance(given, Mapping) else f" (got {json.dumps(given, default=str)})"
        lines.append(f"{key}: {msg}{got}")
    return lines
