"""Operator tooling: the `crm` CLI and the local stack that runs the API without Docker."""
