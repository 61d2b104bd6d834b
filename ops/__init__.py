"""Operations commands: what touches a cloud account or the Pulumi CLI's state.

- ``backend``: the S3 bucket and KMS key shared stacks keep their state in (``python -m ops.backend``);
- ``preflight``: what must hold in the AWS account before a cloud stack's ``pulumi up``;
- ``labs``: lab stacks' expiry and teardown (the Makefile's destroy, the lab reaper workflow).

Imports the product and ``offline`` (its render and command helpers), never ``tests``
(tests/test_layers.py).
"""
