"""The offline harness and verifier: the program run under Pulumi's mock engine, no cluster needed.

- ``engine``: runs the real ``__main__.py`` under the mocks and records every registration;
- ``render``: that recording as Kubernetes manifests and a dependency graph (``python -m offline.render``);
- ``graph``: the recorded dependency graph;
- ``verify``: what reviewers read: schemas, both traffic layers, routes, the install order
  (``python -m offline.verify``, ``make verify``);
- ``cli``: what every command here and in ``ops`` shares (one error line, exit 2).
- ``thirdparty``: every private name of a library used here, one module per library, each refusing
  (or not using) versions it was not tested with.

Runs on a laptop and in CI, touches no cloud account. Imports the product (``__main__.py``,
``components``, ``mesh_platform``), never ``ops`` or ``tests`` (tests/test_layers.py); the verifier
reads one data file of tests/data, the recorded upstream chart facts (``verify.upstream``).
"""

from offline import cli as _cli

# `python -m offline.verify` with a Python that lacks the pinned packages: one line, exit 2 (not an
# ImportError's traceback from deep inside the import of the first of them).
if _cli.running_module().startswith("offline."):
    _cli.needs_venv(_cli.running_module(), "pulumi", "pulumi_kubernetes", "pydantic", "yaml")
