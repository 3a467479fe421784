"""Powertools logger, metrics and tracer shared by every function of the service."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "crm"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="LeadCRM", service=SERVICE)
tracer = Tracer(service=SERVICE)

# A request that records no metric is normal here; Powertools would warn on every such call.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
