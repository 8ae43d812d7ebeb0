"""The download fixtures of the weights tests: a local HTTP file server and a private cache."""

from tests.weights.conftest import file_server, weights_cache  # noqa: F401
