"""Integration fixtures: moto in server mode over HTTP, provisioned from template.yaml."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import boto3
import pytest
import requests

from crm.stack import MotoServer, provision
from crm.template import Template
from shared import dependencies
from tests.helpers import ALLOWED_ORIGIN, SECOND_ORIGIN, base_env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_template() -> Template:
    return Template.load(
        {"Stage": base_env()["STAGE"], "CorsAllowOrigins": f"{ALLOWED_ORIGIN},{SECOND_ORIGIN}"}
    )


test_template.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer(port=free_port())
    server.start()
    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint
    dependencies.reset()
    yield server
    server.stop()
    if previous is None:
        os.environ.pop("AWS_ENDPOINT_URL", None)
    else:
        os.environ["AWS_ENDPOINT_URL"] = previous
    dependencies.reset()


def fresh_stack(moto_server: MotoServer) -> dict[str, str]:
    """Resets moto and provisions the template's tables, bus, queues and rules; returns queue
    logical id -> queue URL."""
    requests.post(f"{moto_server.endpoint}/moto-api/reset", timeout=10).raise_for_status()
    dependencies.reset()
    return provision(test_template(), moto_server.endpoint)


@pytest.fixture
def aws(moto_server: MotoServer) -> Iterator[dict[str, str]]:
    """A fresh local stack for one test."""
    yield fresh_stack(moto_server)
    dependencies.reset()


@pytest.fixture
def dynamodb(aws: dict[str, str]) -> object:
    return boto3.client("dynamodb")
