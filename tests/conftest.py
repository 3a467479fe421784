"""Test-wide configuration: every test process starts from the same environment, set before any
function module is imported (function modules build their resolver at import, as in Lambda)."""

from __future__ import annotations

import os

from tests.helpers import base_env

os.environ.update(base_env())
# Never reach a real AWS endpoint from a test: integration tests point boto3 at moto.
os.environ.pop("AWS_PROFILE", None)
