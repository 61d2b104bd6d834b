"""mesh-platform's components: one ComponentResource per module, each with its ``*Args`` beside it.

Every cluster component (kind, existing, EKS) exposes the same surface,
``mesh_platform.kube.Cluster``, so that the rest of the program never asks where the cluster came
from. Components import pulumi, its providers and ``mesh_platform`` only: never ``offline``,
``ops`` or ``tests`` (tests/test_layers.py).
"""
