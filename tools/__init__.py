"""Offline tooling: render and verify a stack without a cluster, a Pulumi CLI or a network."""
