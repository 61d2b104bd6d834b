"""Render a stack offline: every Kubernetes object it declares and its full resource graph.

    python -m offline.render --stack dev [--out out/dev]
    python -m offline.render --config-file path/to/Pulumi.mystack.yaml --out out/mystack

Runs the real ``__main__.py`` with the real stack file under Pulumi's mock engine
(offline/engine.py): no cluster, no Pulumi CLI, no network. Writes ``manifests.yaml`` (multi-document
YAML of complete objects) and ``graph.json`` (every resource with its parent, provider,
dependencies exactly as sent to the engine, protect flag and inputs). Secrets are placeholders.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from offline import cli, engine


def write(recording: engine.Recording, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    manifests, graph = out / "manifests.yaml", out / "graph.json"
    manifests.write_text(yaml.safe_dump_all(recording.manifests(), sort_keys=False))
    graph.write_text(
        json.dumps(
            {"stack": recording.stack, "resources": [r.as_json() for r in recording.resources], "outputs": recording.outputs},
            indent=2,
        )
        + "\n"
    )
    return manifests, graph


def stack_name(args: argparse.Namespace) -> str:
    if args.stack:
        return args.stack
    # Pulumi.<stack>.yaml → <stack>
    name = Path(args.config_file).name
    return name.removeprefix("Pulumi.").removesuffix(".yaml").removesuffix(".yml") or "custom"


def add_source_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--stack", help="stack name: renders stacks/Pulumi.<stack>.yaml (one of --stack, --config-file)")
    group.add_argument("--config-file", help="render this stack file instead (a YAML mapping with a config: key)")


def render(args: argparse.Namespace) -> engine.Recording:
    config_file = Path(args.config_file) if args.config_file else engine.stack_file(args.stack)
    if not config_file.exists():
        known = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (engine.ROOT / "stacks").glob("Pulumi.*.yaml")
        )
        raise engine.StackFileError(f"no stack file {config_file}; stacks here: {', '.join(known)}")
    return engine.run(stack_name(args), config_file=config_file)


def out_dir(args: argparse.Namespace) -> Path | None:
    """``--out``: a directory this command may create or fill; checked before any work. Only the
    checkout's own ``out/`` is created with its parents; elsewhere the folder around it must exist."""
    if not args.out:
        return None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise cli.UsageError(f"--out {out} exists and is not a directory; give a directory (default: out/<stack>)")
    inside = out.resolve().is_relative_to(engine.ROOT / "out")
    if not out.exists() and not inside and not out.parent.is_dir():
        raise cli.UsageError(f"--out {out}: its folder {out.parent} does not exist; create it first or write elsewhere")
    return out


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv)


def _main(argv: list[str] | None) -> int:
    parser = cli.parser(
        "python -m offline.render",
        __doc__,
        exits=[(0, "rendered; the two files are written")],
    )
    add_source_args(parser)
    parser.add_argument("--out", help="output directory (default: out/<stack>)")
    args = parser.parse_args(argv)
    if args.config_file and Path(args.config_file).is_dir():
        raise cli.UsageError(f"stack file {args.config_file} is a directory; give a Pulumi.<stack>.yaml file")
    chosen = out_dir(args)
    # An invalid stack configuration is pulumi.RunError: one line per problem, exit 2 (as verify).
    recording = render(args)
    cli.note_defaults(Path(args.config_file) if args.config_file else engine.stack_file(args.stack), recording.stack)
    out = chosen or engine.ROOT / "out" / recording.stack
    manifests, graph = write(recording, out)
    objects, resources = len(recording.manifests()), len(recording.resources)
    print(f"{recording.stack}: {objects} Kubernetes objects → {manifests}; {resources} resources → {graph}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
