"""Powertools logger and metrics shared by every function of the service.

Traces come from Lambda's active tracing (template.yaml); the Powertools tracer is not loaded,
because importing the X-Ray SDK costs about 300 ms of every cold start."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

SERVICE = "crm"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="LeadCRM", service=SERVICE)

# A request that records no metric is normal here; Powertools would warn on every such call.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def add_count(name: str, value: float) -> None:
    """Adds a Count metric to this invocation's metrics (flushed by `metrics.log_metrics`).
    Powertools keeps metrics even when disabled, and prints them once 100 values have piled up,
    so none is added then."""
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
