"""Lambda entry point of the stats service (StatsFunction in template.yaml)."""

from __future__ import annotations

from shared.http import create_app, http_entrypoint
from stats.routes import router

app = create_app()
app.include_router(router)

lambda_handler = http_entrypoint(app)
