"""Benchmark scripts: each prints medians and ratios measured on this machine."""
