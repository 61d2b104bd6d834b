"""Scenarios on the local control plane (make itest)."""
