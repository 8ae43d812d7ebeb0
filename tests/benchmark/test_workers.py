"""The benchmark's worker processes: the environment they start with."""

import os

import pytest

from keras_mvf.benchmark.workers import WORKER_ENVIRONMENT, Worker


@pytest.mark.parametrize("fresh_interpreter", [False, True], ids=["forked", "fresh"])
def test_workers_start_with_huge_pages_for_malloc_and_the_parent_does_not(
    monkeypatch, fresh_interpreter
):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    with Worker(fresh_interpreter) as worker:
        assert worker.call(os.getenv, "GLIBC_TUNABLES") == WORKER_ENVIRONMENT["GLIBC_TUNABLES"]
    assert "GLIBC_TUNABLES" not in os.environ


def test_a_users_glibc_tunables_are_kept(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0")
    with Worker(fresh_interpreter=True) as worker:
        assert worker.call(os.getenv, "GLIBC_TUNABLES") == "glibc.malloc.hugetlb=0"
    assert os.environ["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"
