"""The REST service: FastAPI app factory, accounts and roles, rate limits, records, audit trail, metrics.

Kept import-light on purpose: ``cxr`` imports :mod:`.commands` at start-up, and FastAPI, SQLAlchemy and
ONNX Runtime load only when a command that needs them runs. Entry points: :func:`.app.create_app` and
:class:`.store.Store`.
"""
