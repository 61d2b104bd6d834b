"""Scenarios on the local control plane (make itest): the real Pulumi CLI and provider on a real API server.

``harness`` starts one control plane (``local``) per session and runs the CLI in a copy of the
project; the scenarios may import everything: the product, ``offline`` and ``local``.
"""
