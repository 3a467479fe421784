"""Powertools logger and metrics shared by every function of the service.

Each function logs and publishes its metrics under its own service name, the
POWERTOOLS_SERVICE_NAME its template entry sets (`leads`, `stats`, `stats-consumer`, ...): the
`service` key of every log line and the `service` dimension of every metric (see
docs/monitoring.md). Code run outside a function (the `crm` commands, tests) is `crm`.

Traces come from Lambda's active tracing (template.yaml); the Powertools tracer is not loaded,
because importing the X-Ray SDK costs about 300 ms of every cold start."""

from __future__ import annotations

import os
import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "crm"
NAMESPACE = "LeadCRM"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# A request that records no metric is normal here; Powertools would warn on every such call.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def add_count(name: str, value: float) -> None:
    """Adds a Count metric to this invocation's metrics (flushed by `metrics.log_metrics`)."""
    _add(name, MetricUnit.Count, value)


def add_seconds(name: str, value: float) -> None:
    """Adds a Seconds metric to this invocation's metrics (flushed by `metrics.log_metrics`)."""
    _add(name, MetricUnit.Seconds, value)


def _add(name: str, unit: MetricUnit, value: float) -> None:
    # Powertools keeps metrics even when disabled, and prints them once 100 values have piled
    # up, so none is added then.
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=unit, value=value)


def correlation_id() -> str | None:
    """The correlation id of the invocation being handled: an API request's id (set by the
    HTTP entry point), None outside one."""
    return logger.get_correlation_id()
