"""Fixtures and report hooks of the itest scenarios (tests/itest/harness.py)."""

from itest.harness import plane, project, pytest_runtest_logreport, pytest_sessionfinish  # noqa: F401
