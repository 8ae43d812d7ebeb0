"""Marks the expensive tests `slow`, so `pytest -m "not slow"` is a quick subset.

A test is slow when it is marked `slow` or `large`, or when it uses a fixture
that trains a model or starts processes (`SLOW_FIXTURES`).

The README's command runs the suite on two workers, a file per worker at a time
(`pytest -n 2 --dist loadfile`, pytest-xdist): much of its time is spent in one
thread (tracing, compiling, starting processes), and a file's module fixtures
are then made once. The files with slow tests go first, so the quick files come
last and fill whichever worker is done first, rather than one worker starting a
long file when the other is nearly done (pyproject.toml turns off xdist's own
order, which puts the files with the most tests first).
"""

import pytest

SLOW_FIXTURES = {
    "trained",  # tests/export/conftest.py: trains the tiny exported model
    "demo",  # tests/training/test_demo_and_cli.py: runs `keras-mvf demo --quick`
    "quick_report",  # tests/benchmark/test_suite.py: runs the quick benchmark suite
    "single_device",  # tests/training/test_strategies.py: trains the reference run
}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("large") or SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: files stay together
