"""Persistence beneath every door (REST API, DICOM node, CLI): database and migrations, prediction records,
the hash-chained audit trail, images encrypted at rest, users and API keys.

Nothing here knows HTTP: no FastAPI or Starlette import, and no import of :mod:`cxr_pneumonia.service`
(checked by ``lint-imports``). Entry point: :class:`.facade.Store`. Kept import-light: ``cxr`` imports
:mod:`.commands` at start-up, and SQLAlchemy loads only when a command that needs it runs.
"""
