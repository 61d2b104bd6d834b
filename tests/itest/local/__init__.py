"""The local control plane: test infrastructure for the itest scenarios (tests/itest) and `make local-up`.

The real Pulumi CLI, Kubernetes provider, kube-apiserver, controllers, etcd and kwok, built from
their Go modules (``build``), started on 127.0.0.1 (``controlplane``), with stand-in charts built
from recorded upstream facts and the real CRDs (``charts``), stand-in operators (``operators``),
the Python language host (``langhost``) and its PKI (``pki``). Imports its own modules relatively
(it runs as ``python -m tests.itest.local.…`` and under pytest as ``itest.local``), the product's
pins, and ``offline``; nothing of the product imports it (tests/test_layers.py).
"""
