"""python -m offline.verify: check a stack, or your own manifests, offline.

    python -m offline.verify --stack dev [--format text|markdown|json] [--base-ref origin/main]
    python -m offline.verify --manifests app.yaml policies.yaml [--kubernetes-version 1.35]

Exit status: 0 nothing is violated; 1 violations were found (the report lists them); 2 a usage or
input error (one line on standard error: a bad stack value, an unreadable or empty manifest file, a
document that is no Kubernetes object, an unknown --kubernetes-version or --base-ref, a Pulumi SDK
version the mock engine was not tested with).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pulumi

from offline.cli import UsageError
from offline.verify import pipeline, report
from offline.verify.diff import BaseRefError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m offline.verify",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n")[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="render and check stacks/Pulumi.<stack>.yaml")
    source.add_argument("--config-file", help="render and check this stack file")
    source.add_argument("--manifests", nargs="+", type=Path, metavar="FILE", help="check these Kubernetes YAML files")
    parser.add_argument("--format", choices=sorted(report.FORMATS), default="text")
    parser.add_argument("--base-ref", help="also report what changes in routes and flows against this git ref")
    parser.add_argument("--kubernetes-version", default=pipeline.DEFAULT_KUBERNETES_VERSION, help="schemas for --manifests")
    parser.add_argument("--out", type=Path, help="write the report here instead of standard output")
    args = parser.parse_args(argv)
    try:
        if args.manifests:
            if args.base_ref:
                parser.error("--base-ref needs --stack")
            result = pipeline.verify_manifests(args.manifests, args.kubernetes_version)
        else:
            stack = args.stack or Path(args.config_file).name.removeprefix("Pulumi.").removesuffix(".yaml")
            config = Path(args.config_file) if args.config_file else None
            if config is None and not pipeline.engine.stack_file(stack).exists():
                raise pulumi.RunError(f"no stack file {pipeline.engine.stack_file(stack)}")
            result = pipeline.verify_stack(stack, config, args.base_ref)
    except (pulumi.RunError, BaseRefError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = report.FORMATS[args.format](result)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
