"""Lambda entry point of the lead service (LeadsFunction in template.yaml)."""

from __future__ import annotations

from leads.routes import router
from shared.http import create_app, http_entrypoint

app = create_app()
app.include_router(router)

lambda_handler = http_entrypoint(app)
