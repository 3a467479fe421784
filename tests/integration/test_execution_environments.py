"""The local runner's execution environments (`crm.functions`): each a worker process with memory
of its own, up to `concurrency` per function, started on demand; a function that runs past its
Timeout loses its environment; and environments of one function agree through the shared Redis,
as deployed functions do through ElastiCache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis

from crm.functions import FunctionError, FunctionRegistry, FunctionSpec, FunctionTimedOut, LocalFunction
from crm.seed import SeedTables, seed_demo_data
from crm.stack import LocalRedis, MotoServer
from tests.helpers import api_event, header, response_json, staff_token
from tests.integration.conftest import fresh_stack, test_template

PROBE = "tests.integration.environment_probe"


def probe(handler: str = "count", concurrency: int = 2, timeout: int = 15) -> LocalFunction:
    spec = FunctionSpec("ProbeFunction", "crm-test-probe", f"{PROBE}.{handler}", memory=128, timeout=timeout)
    return LocalFunction(spec, os.environ, concurrency)


@pytest.fixture
def stopped_afterwards() -> Iterator[list[LocalFunction]]:
    functions: list[LocalFunction] = []
    yield functions
    for function in functions:
        function.stop()


def test_concurrent_invocations_run_at_once_in_processes_that_share_no_memory(
    tmp_path: Path, stopped_afterwards: list[LocalFunction]
) -> None:
    # Given a function with two execution environments, whose handler returns only once two
    # invocations are running at the same time
    meet = probe("meet")
    stopped_afterwards.append(meet)
    event = {"folder": str(tmp_path), "parties": 2, "within": 60}
    # When it is invoked twice at once
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(meet.invoke, [event, event])
    # Then both ran, at once, in two processes, each counting its own first invocation
    assert first["pid"] != second["pid"]
    assert (first["invocations"], second["invocations"]) == (1, 1)
    assert meet.cold_starts == 2


def test_module_state_belongs_to_one_environment(stopped_afterwards: list[LocalFunction]) -> None:
    # Given two environments of one function, held at once
    count = probe()
    stopped_afterwards.append(count)
    with ExitStack() as held:
        first = held.enter_context(count.environment_for_invocation())
        second = held.enter_context(count.environment_for_invocation())
        # When the first serves three invocations and the second one
        answers = [first.invoke({}) for _ in range(3)]
        other = second.invoke({})
    # Then each counted its own invocations in its own process
    assert [answer["invocations"] for answer in answers] == [1, 2, 3]
    assert other["invocations"] == 1
    assert {answer["pid"] for answer in answers} == {first.pid}
    assert other["pid"] == second.pid != first.pid


def test_a_function_never_has_more_environments_than_its_concurrency(
    stopped_afterwards: list[LocalFunction],
) -> None:
    # Given a function allowed two environments
    count = probe(concurrency=2)
    stopped_afterwards.append(count)
    # When eight callers invoke it 40 times at once
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(count.invoke, [{}] * 40))
    # Then every invocation was answered by one of at most two processes, warm ones reused
    assert len(answers) == 40
    assert len({answer["pid"] for answer in answers}) <= 2
    assert count.cold_starts <= 2
    assert (
        sum(max(a["invocations"] for a in answers if a["pid"] == pid) for pid in {a["pid"] for a in answers})
        == 40
    )


def test_an_invocation_past_the_timeout_loses_its_environment(
    stopped_afterwards: list[LocalFunction],
) -> None:
    # Given a warm environment of a function with a one-second Timeout
    count = probe(concurrency=1, timeout=1)
    stopped_afterwards.append(count)
    warm = count.invoke({})
    # When an invocation never answers
    with pytest.raises(FunctionTimedOut, match=r"Task timed out after 1\.00 seconds") as timed_out:
        count.invoke({"hang": True})
    # Then the caller is told, and the next invocation gets a new environment with fresh memory
    assert not timed_out.value.by_caller
    after = count.invoke({})
    assert after["pid"] != warm["pid"]
    assert after["invocations"] == 1
    assert count.cold_starts == 2


def test_a_caller_that_waits_less_than_the_timeout_is_told_so(
    stopped_afterwards: list[LocalFunction],
) -> None:
    count = probe(concurrency=1, timeout=900)
    stopped_afterwards.append(count)
    with pytest.raises(FunctionTimedOut) as timed_out:
        count.invoke({"hang": True}, caller_timeout=1)
    assert timed_out.value.by_caller


def test_a_failing_invocation_keeps_its_environment(stopped_afterwards: list[LocalFunction]) -> None:
    count = probe(concurrency=1)
    stopped_afterwards.append(count)
    warm = count.invoke({})
    with pytest.raises(FunctionError, match="RuntimeError: the handler failed"):
        count.invoke({"fail": True})
    after = count.invoke({})
    assert after["pid"] == warm["pid"]
    assert after["invocations"] == 3


def test_a_handler_that_cannot_be_imported_fails_each_invocation(
    stopped_afterwards: list[LocalFunction],
) -> None:
    broken = probe("no_such_handler")
    stopped_afterwards.append(broken)
    with pytest.raises(FunctionError, match=r"Runtime\.ImportModuleError"):
        broken.invoke({})


@pytest.fixture
def own_redis() -> Iterator[LocalRedis]:
    """A redis-server of this test's own, as `crm serve` starts one: no other test's entries."""
    server = LocalRedis()
    server.start()
    yield server
    server.stop()


@pytest.mark.redis
def test_a_write_through_one_environment_is_read_by_another(
    moto_server: MotoServer, own_redis: LocalRedis
) -> None:
    # Given the leads function with two environments sharing one Redis, and a seeded stack
    assert redis.Redis.from_url(own_redis.url).ping()
    fresh_stack(moto_server)
    seed_demo_data(SeedTables.configured(), lead_count=5)
    functions = FunctionRegistry(test_template(), {**os.environ, "REDIS_URL": own_redis.url}, concurrency=2)
    leads = functions["LeadsFunction"]
    token = staff_token("demo-admin")
    try:
        with ExitStack() as held:
            reader = held.enter_context(leads.environment_for_invocation())
            writer = held.enter_context(leads.environment_for_invocation())
            lead = first_lead(reader.invoke(api_event("GET", "/leads", token=token, query={"limit": "1"})))
            path = f"/leads/{lead['lead_id']}"
            one = {"resource": "/leads/{lead_id}", "path_parameters": {"lead_id": lead["lead_id"]}}
            # When the reader has cached the lead, and the writer changes it
            assert header(reader.invoke(api_event("GET", path, token=token, **one)), "X-Cache") == "miss"
            assert header(reader.invoke(api_event("GET", path, token=token, **one)), "X-Cache") == "hit"
            change = {"version": lead["version"], "notes": "seen by every environment"}
            written = writer.invoke(api_event("PATCH", path, token=token, body=change, **one))
            assert written["statusCode"] == 200, written
            # Then the reader's next read has the change
            reread = response_json(reader.invoke(api_event("GET", path, token=token, **one)))
        assert reader.pid != writer.pid
        assert reread["notes"] == "seen by every environment"
        assert reread["version"] == lead["version"] + 1
    finally:
        functions.stop()


def first_lead(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200, response
    lead: dict[str, Any] = response_json(response)["data"][0]
    return lead
