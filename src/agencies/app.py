"""Lambda entry point of the agencies service (AgenciesFunction in template.yaml).

Importing it is the cold start's share of the function: the resolver and the routes
(`agencies.routes`) are built by the first event (see `shared.entrypoints`)."""

from __future__ import annotations

from shared.entrypoints import api_function

lambda_handler = api_function("agencies.routes")
