"""Powertools logger and metrics shared by every function of the service.

Traces come from Lambda's active tracing (template.yaml); the Powertools tracer is not loaded,
because importing the X-Ray SDK costs about 300 ms of every cold start."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics

SERVICE = "crm"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="LeadCRM", service=SERVICE)

# A request that records no metric is normal here; Powertools would warn on every such call.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
