"""python -m offline.verify: check a stack, or your own manifests, offline.

    python -m offline.verify --stack dev [--format text|markdown|json] [--base-ref origin/main]
    python -m offline.verify --manifests app.yaml policies.yaml [--kubernetes-version 1.35]

Exit status: 0 nothing is violated; 1 violations were found (the report lists them); 2 a usage or
input error (one line on standard error: a bad stack value, an unreadable or empty manifest file, a
document that is no Kubernetes object, an unknown --kubernetes-version or --base-ref, a Pulumi SDK
version the mock engine was not tested with).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi

from offline import cli
from offline.cli import UsageError
from offline.verify import pipeline, report
from offline.verify.diff import BaseRefError


def out_file(path: Path) -> Path:
    """``--out``: a file this command may write; checked before any work, so a typo costs no render.
    Inside the checkout's ``out/`` its folder is made; elsewhere it must exist."""
    if path.is_dir():
        raise UsageError(f"--out {path} is a directory; give a file name such as {path / 'verify.json'}")
    if path.resolve().is_relative_to(pipeline.engine.ROOT / "out"):
        path.parent.mkdir(parents=True, exist_ok=True)  # the checkout's own output folder, as render does
    elif not path.parent.is_dir():
        raise UsageError(f"--out {path}: its folder {path.parent} does not exist; create it first or write elsewhere")
    return path


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv)


def _main(argv: list[str] | None) -> int:
    parser = cli.parser(
        "python -m offline.verify",
        __doc__,
        exits=[(0, "nothing is violated"), (1, "violations were found (the report lists them)")],
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="render and check stacks/Pulumi.<stack>.yaml")
    source.add_argument("--config-file", help="render and check this stack file")
    source.add_argument("--manifests", nargs="+", type=Path, metavar="FILE", help="check these Kubernetes YAML files")
    parser.add_argument("--format", choices=sorted(report.FORMATS), default="text", help="report format")
    parser.add_argument("--base-ref", help="also report what changes in routes and flows against this git ref")
    parser.add_argument("--kubernetes-version", default=pipeline.DEFAULT_KUBERNETES_VERSION, help="schemas for --manifests")
    parser.add_argument("--out", type=Path, help="write the report to this file instead of standard output")
    args = parser.parse_args(argv)
    out = out_file(args.out) if args.out else None
    try:
        if args.manifests:
            if args.base_ref:
                parser.error("--base-ref needs --stack")
            result = pipeline.verify_manifests(args.manifests, args.kubernetes_version)
        else:
            stack = args.stack or Path(args.config_file).name.removeprefix("Pulumi.").removesuffix(".yaml")
            config = Path(args.config_file) if args.config_file else None
            if config is None and not pipeline.engine.stack_file(stack).exists():
                known = sorted(
                    p.name.removeprefix("Pulumi.").removesuffix(".yaml")
                    for p in pipeline.engine.stack_file(stack).parent.glob("Pulumi.*.yaml")
                )
                raise pulumi.RunError(f"no stack file {pipeline.engine.stack_file(stack)}; stacks here: {', '.join(known)}")
            if config is not None and config.is_dir():
                raise UsageError(f"stack file {config} is a directory; give a Pulumi.<stack>.yaml file")
            result = pipeline.verify_stack(stack, config, args.base_ref)
            cli.note_defaults(config or pipeline.engine.stack_file(stack), stack)
    except BaseRefError as err:
        raise UsageError(str(err)) from err
    text = report.FORMATS[args.format](result)
    if out is not None:
        out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
