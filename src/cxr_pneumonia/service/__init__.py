"""The REST service (the HTTP door): FastAPI app factory, routes, schemas, HTTP authentication and
tokens, rate limits, error mapping, metrics. What it stores goes through :mod:`cxr_pneumonia.store`.

Kept import-light on purpose: ``cxr`` imports :mod:`.commands` at start-up, and FastAPI, SQLAlchemy and
ONNX Runtime load only when a command that needs them runs. Entry point: :func:`.app.create_app`.
"""
