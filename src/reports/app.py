"""Lambda entry point of the reports service (ReportsFunction in template.yaml)."""

from __future__ import annotations

from reports.routes import router
from shared.http import create_app, http_entrypoint

app = create_app()
app.include_router(router)

lambda_handler = http_entrypoint(app)
