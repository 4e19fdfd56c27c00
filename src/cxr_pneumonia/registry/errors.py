"""Registry errors: a clear code for each way a lifecycle step can be refused."""

from __future__ import annotations

from ..errors import CXRError, ModelError


class RegistryError(CXRError):
    """A registry request that cannot be honoured (unknown model, version, alias, bad URI)."""

    code = "registry_error"
    http_status = 400


class RegistryUnreachable(ModelError):
    """The registry did not answer (network, server down)."""

    code = "registry_unreachable"


class PromotionRefused(RegistryError):
    code = "promotion_refused"
    http_status = 409
