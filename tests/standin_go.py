#!/usr/bin/env python3
"""A stand-in ``go`` for the build tests: fails the way the real one does, records what it was given.

Put on PATH as ``go`` (tests/test_local.py). Every call appends ``{"argv", "cwd", "env"}`` to
``$STANDIN_GO_LOG``. Like go 1.26:

- a working directory that does not exist never reaches go: Python's ``subprocess`` raises first
  (what a cold machine's missing cache root did);
- ``-mod=mod`` in GOFLAGS with a ``go.work`` in the working directory or above, and GOWORK not
  ``off``, is "go: -mod may only be set to readonly or vendor when in workspace mode";
- ``mod download -json M@V`` unpacks module M from ``$STANDIN_GO_MODULES`` (a JSON map of module
  path to its go.mod text and extra files) into ``$GOMODCACHE`` and prints ``{"Dir": ...}``;
- ``mod edit -require=M@V`` for a module whose version is not in that map's ``served`` list is
  accepted (as go is), but ``build`` then fails "reading M@V: 403 not available";
- ``build -o OUT PKG...`` writes an executable per package.
"""

import json
import os
import sys
from pathlib import Path


def workspace(cwd: Path, env: dict) -> bool:
    if env.get("GOWORK") == "off":
        return False
    if env.get("GOWORK"):
        return True
    return any((d / "go.work").exists() for d in (cwd, *cwd.parents))


def main() -> int:
    argv, env, cwd = sys.argv[1:], dict(os.environ), Path.cwd()
    with open(env["STANDIN_GO_LOG"], "a") as log:
        log.write(json.dumps({"argv": argv, "cwd": str(cwd), "env": env}) + "\n")
    if "-mod=mod" in env.get("GOFLAGS", "").split() and workspace(cwd, env):
        print("go: -mod may only be set to readonly or vendor when in workspace mode", file=sys.stderr)
        return 1
    modules = json.loads(Path(env["STANDIN_GO_MODULES"]).read_text())
    if argv[:3] == ["mod", "download", "-json"]:
        module, version = argv[3].split("@")
        spec = modules[module]
        d = Path(env.get("GOMODCACHE") or Path.home() / "go" / "pkg" / "mod") / f"{module}@{version}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "go.mod").write_text(spec["go.mod"])
        for name, text in spec.get("files", {}).items():
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            (d / name).write_text(text)
        print(json.dumps({"Path": module, "Version": version, "Dir": str(d)}))
        return 0
    if argv[:2] == ["mod", "edit"]:
        with (cwd / "go.mod").open("a") as f:
            f.write("".join(f"// {a}\n" for a in argv[2:]))
        return 0
    if argv[0] == "generate":
        return 0
    if argv[0] == "build":
        served = {m: set(s["served"]) for m, s in modules.items() if "served" in s}
        for line in (cwd / "go.mod").read_text().splitlines():
            if line.startswith("// -require="):
                module, version = line.removeprefix("// -require=").split("@")
                if module in served and version not in served[module]:
                    print(f"go: reading {module}@{version}: 403 not available", file=sys.stderr)
                    return 1
        out = Path(argv[argv.index("-o") + 1])
        for pkg in [a for a in argv if a.startswith("./")]:
            target = out / Path(pkg).name if str(out).endswith("/") or out.is_dir() else out
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("#!/bin/sh\n")
            target.chmod(0o755)
        return 0
    print(f"stand-in go: unexpected {argv}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
