"""Powertools logger, metrics and tracer shared by every function of the service."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "crm"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="LeadCRM", service=SERVICE)
tracer = Tracer(service=SERVICE)
