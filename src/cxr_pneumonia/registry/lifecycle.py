"""Register, list, show, promote and roll back model packages in an MLflow Model Registry.

Needs MLflow (the ``registry`` extra). Every alias move is audited in the store; the champion's alias
history is kept as a registered-model tag, so ``rollback`` knows where it pointed before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..config import Settings
from ..package import ModelPackage
from ..store.facade import Store
from . import gate
from .errors import PromotionRefused, RegistryError
from .mlflow_env import import_mlflow
from .reader import DIGEST_TAG, RegistryVersion
from .tags import evaluations_from_tags, history_tag, package_tags, read_history

CHAMPION = "champion"
EXPERIMENT = "cxr-pneumonia-registry"


@dataclass(frozen=True)
class Registered:
    version: RegistryVersion
    created: bool  # False: this digest was registered already


class Registry:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        uri = settings.resolved_mlflow_uri
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.mlflow = import_mlflow()
        self.uri = uri
        self.client = self.mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        self._store = store

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.from_settings(self.settings)
        return self._store

    # ---- reading --------------------------------------------------------------------------------
    def _exists(self, name: str) -> bool:
        return bool(self.client.search_registered_models(filter_string=f"name = '{name}'"))

    def versions(self, name: str) -> list[RegistryVersion]:
        if not self._exists(name):
            return []
        found = self.client.search_model_versions(filter_string=f"name = '{name}'")
        # a search leaves a version's aliases out: they are read from the registered model
        aliases: dict[str, list[str]] = {}
        for alias, version in self.client.get_registered_model(name).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
        versions = [
            replace(RegistryVersion.from_client(mv), aliases=tuple(sorted(aliases.get(str(mv.version), []))))
            for mv in found
        ]
        return sorted(versions, key=lambda v: int(v.version))

    def get(self, name: str, version_or_alias: str) -> RegistryVersion:
        try:
            if version_or_alias.isdigit():
                mv = self.client.get_model_version(name, version_or_alias)
            else:
                mv = self.client.get_model_version_by_alias(name, version_or_alias)
        except self.mlflow.exceptions.MlflowException as exc:
            raise RegistryError(f"{name} {version_or_alias}: {exc.message}") from None
        return RegistryVersion.from_client(mv)

    def champion(self, name: str) -> RegistryVersion | None:
        try:
            return self.get(name, CHAMPION)
        except RegistryError:
            return None

    def model_tags(self, name: str) -> dict[str, str]:
        return dict(self.client.get_registered_model(name).tags)

    def listing(self, name: str | None = None) -> list[dict[str, Any]]:
        names = [name] if name else [m.name for m in self.client.search_registered_models()]
        return [describe(v) for n in names for v in self.versions(n)]

    # ---- writing --------------------------------------------------------------------------------
    def register(
        self, package_dir: Path, name: str, alias: str | None = None, actor: str = "cli"
    ) -> Registered:
        """Log the package's files, unchanged, as a new version (a no-op for a digest already there)."""
        package = ModelPackage.open(package_dir)  # verified before anything is uploaded
        manifest = package.manifest
        if alias == CHAMPION and self.champion(name) is not None:
            raise PromotionRefused(f"{name} has a champion already: move it with `cxr models promote`")
        for existing in self.versions(name):
            if existing.digest == manifest.digest:
                return Registered(existing, created=False)
        if not self._exists(name):
            self.client.create_registered_model(name, description="CXR pneumonia model packages")
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else self._create_experiment()
        run = self.client.create_run(
            experiment_id, run_name=manifest.model_id, tags={DIGEST_TAG: manifest.digest}
        )
        self.client.log_artifacts(run.info.run_id, str(package.path), artifact_path="model")
        self.client.set_terminated(run.info.run_id)
        mv = self.client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=package_tags(manifest)
        )
        registered = RegistryVersion.from_client(mv)
        self._audit(
            "model_register",
            actor,
            "ok",
            {
                "name": name,
                "version": registered.version,
                "digest": manifest.digest,
                "model_id": manifest.model_id,
            },
        )
        if alias:
            self._move(name, alias, registered.version, actor, {"via": "register"})
            registered = self.get(name, registered.version)
        return Registered(registered, created=True)

    def _create_experiment(self) -> str:
        """A server keeps the artifacts where it was told to; a local store would put them in the
        current directory (./mlruns): under the data dir instead."""
        location = None
        if not self.uri.startswith(("http://", "https://")):
            location = (self.settings.data_dir / "mlflow-artifacts").resolve().as_uri()
        return str(self.client.create_experiment(EXPERIMENT, artifact_location=location))

    def promote(
        self,
        name: str,
        version: str,
        alias: str,
        *,
        force: bool = False,
        reason: str = "",
        actor: str = "cli",
    ) -> gate.GateResult | None:
        """Point ``alias`` at ``version``. For the champion alias, the gate decides unless forced."""
        candidate = self.get(name, version)
        result = None
        if alias == CHAMPION:
            current = self.champion(name)
            if current is not None and current.version == candidate.version:
                raise RegistryError(f"{name} {version} is the champion already")
            if current is not None:
                key = gate.evaluation_key(self.settings, current.tags.get("cxr.dataset_version", ""))
                result = gate.check(
                    self.settings,
                    key,
                    evaluations_from_tags(candidate.tags),
                    evaluations_from_tags(current.tags),
                )
                if not result.passed and not force:
                    self._audit(
                        "model_promote",
                        actor,
                        "refused",
                        {"name": name, "version": version, "alias": alias, "gate": result.reason},
                    )
                    raise PromotionRefused(result.reason)
                if not result.passed and not reason.strip():
                    raise RegistryError("--force needs --reason: it is written to the audit trail")
        detail: dict[str, Any] = {"gate": result.reason if result else "no champion yet"}
        if force and result is not None and not result.passed:
            detail.update(forced=True, reason=reason)
        self._move(name, alias, candidate.version, actor, detail)
        return result

    def rollback(self, name: str, actor: str = "cli") -> str:
        """Move the champion back to the version it pointed to before; return that version."""
        history = read_history(self.model_tags(name), CHAMPION)
        if len(history) < 2:
            raise RegistryError(f"{name}'s champion has no earlier version to roll back to")
        previous = history[-2]
        self.client.set_registered_model_alias(name, CHAMPION, previous)
        self.client.set_registered_model_tag(name, history_tag(CHAMPION), json.dumps(history[:-1]))
        self._audit(
            "model_rollback",
            actor,
            "ok",
            {"name": name, "alias": CHAMPION, "from": history[-1], "to": previous},
        )
        return previous

    def _move(self, name: str, alias: str, version: str, actor: str, detail: dict[str, Any]) -> None:
        history = read_history(self.model_tags(name), alias)
        previous = history[-1] if history else None
        self.client.set_registered_model_alias(name, alias, version)
        self.client.set_registered_model_tag(name, history_tag(alias), json.dumps([*history, version]))
        self._audit(
            "model_promote",
            actor,
            "forced" if detail.get("forced") else "ok",
            {"name": name, "alias": alias, "from": previous, "to": version, **detail},
        )

    def _audit(self, action: str, actor: str, outcome: str, detail: dict[str, Any]) -> None:
        self.store.audit(action, actor=actor, outcome=outcome, detail={"registry": self.uri_label, **detail})

    @property
    def uri_label(self) -> str:
        """The tracking URI without any credential in it (audit events are read by auditors)."""
        head, sep, tail = self.uri.rpartition("@")
        return f"{self.uri.split('://')[0]}://…@{tail}" if sep and "://" in head else self.uri


def describe(v: RegistryVersion) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": v.version,
        "aliases": list(v.aliases),
        "digest": v.digest,
        "package": f"{v.tags.get('cxr.package_name', '')}:{v.tags.get('cxr.package_version', '')}",
        "dataset_version": v.tags.get("cxr.dataset_version", ""),
        # Empty unless the data was DVC-tracked: the DVC md5 and the data repository's git revision.
        "dataset_dvc_md5": v.tags.get("cxr.dataset_dvc_md5", ""),
        "dataset_git_revision": v.tags.get("cxr.dataset_git_revision", ""),
        "parent_digest": v.tags.get("cxr.parent_digest", ""),
        "code_version": v.tags.get("cxr.code_version", ""),
        "evaluations": evaluations_from_tags(v.tags),
        "uri": f"models:/{v.name}/{v.version}",
    }
