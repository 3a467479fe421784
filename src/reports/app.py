"""Lambda entry point of the reports service (ReportsFunction in template.yaml).

Its routes are added to `router` as the service's capabilities are built; until then every
path answers like an unknown route.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from shared.http import create_app, http_entrypoint

router = Router()

app = create_app()
app.include_router(router)

lambda_handler = http_entrypoint(app)
