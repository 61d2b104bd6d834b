"""Operations commands: what touches a cloud account or the Pulumi CLI's state.

- ``backend``: the S3 bucket and KMS key shared stacks keep their state in (``python -m ops.backend``);
- ``preflight``: what must hold in the AWS account before a cloud stack's ``pulumi up``;
- ``labs``: lab stacks' expiry and teardown (the Makefile's destroy, the lab reaper workflow).

Imports the product and ``offline`` (its render and command helpers), never ``tests``
(tests/test_layers.py).
"""

from offline import cli as _cli

#: What each command needs beyond the standard library (ops.preflight decides per mode; ops.labs
#: needs nothing more): run outside ``.venv``, one line and exit 2 instead of a traceback.
_NEEDS = {"ops.backend": ("boto3", "botocore")}
if _cli.running_module() in _NEEDS:
    _cli.needs_venv(_cli.running_module(), *_NEEDS[_cli.running_module()])
