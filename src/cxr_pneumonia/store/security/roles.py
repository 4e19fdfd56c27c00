"""Roles and what each may do. Every protected route names one permission; nothing checks role names."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # accounts, keys, models; reads history and the audit trail
    CLINICIAN = "clinician"  # predicts, reads history, records reviews
    AUDITOR = "auditor"  # reads history and the audit trail, changes nothing
    INTEGRATION = "integration"  # predicts only (the DICOM node, a PACS router, a script)


class Permission(StrEnum):
    PREDICT = "predict"
    READ_HISTORY = "read_history"
    REVIEW = "review"
    READ_AUDIT = "read_audit"
    MANAGE = "manage"  # users and API keys
    READ_MODEL = "read_model"
    READ_METRICS = "read_metrics"  # only consulted when CXR_METRICS_PUBLIC is false


# Admins do not predict or review: clinical acts belong to clinical accounts, and a compromised admin
# session then cannot add records in a clinician's name.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(
        {
            Permission.MANAGE,
            Permission.READ_HISTORY,
            Permission.READ_AUDIT,
            Permission.READ_MODEL,
            Permission.READ_METRICS,
        }
    ),
    Role.CLINICIAN: frozenset(
        {Permission.PREDICT, Permission.READ_HISTORY, Permission.REVIEW, Permission.READ_MODEL}
    ),
    Role.AUDITOR: frozenset(
        {Permission.READ_HISTORY, Permission.READ_AUDIT, Permission.READ_MODEL, Permission.READ_METRICS}
    ),
    Role.INTEGRATION: frozenset({Permission.PREDICT, Permission.READ_MODEL}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
