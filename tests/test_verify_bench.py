"""The benchmark's summary line (offline/verify/bench.py); its generated stacks: tests/test_verify_fast.py."""

from __future__ import annotations

from offline.verify import bench


def test_growth_compares_each_size_with_the_next() -> None:
    line = bench.growth({300: 15.0, 100: 4.0, 50: 2.5})
    assert line == "verify time growth: 50→100: x1.60 for x2 the services; 100→300: x3.75 for x3 the services"


def test_growth_of_one_size_says_so() -> None:
    assert bench.growth({10: 1.0}) == "verify time growth: one size only"
