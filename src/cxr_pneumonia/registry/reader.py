"""Reading the registry, as serving needs it: resolve an alias or version, download its files.

Two readers, one interface. An ``http(s)://`` tracking URI (an ``mlflow server``, production) is read
over MLflow's REST API with the standard library only, so the serving install needs no MLflow. Any
other URI (the embedded ``sqlite:///`` default) is a local store only MLflow itself can read: that
needs the ``registry`` extra.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import RegistryError, RegistryUnreachable
from .mlflow_env import import_mlflow

DIGEST_TAG = "cxr.digest"
REST_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class RegistryVersion:
    name: str
    version: str
    source: str  # where the version's files are (an artifact URI)
    run_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        return self.tags.get(DIGEST_TAG, "")

    @classmethod
    def from_rest(cls, data: dict[str, Any]) -> RegistryVersion:
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            source=str(data.get("source", "")),
            run_id=str(data.get("run_id", "")),
            tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
            aliases=tuple(data.get("aliases", [])),
        )

    @classmethod
    def from_client(cls, mv: Any) -> RegistryVersion:
        """From an MLflow client's ModelVersion."""
        return cls(
            name=mv.name,
            version=str(mv.version),
            source=mv.source,
            run_id=mv.run_id or "",
            tags=dict(mv.tags),
            aliases=tuple(mv.aliases),
        )


class RegistryReader(Protocol):
    def resolve(self, name: str, *, alias: str | None = None, version: str | None = None) -> RegistryVersion:
        """The version an alias points to (or a numbered version); RegistryError if there is none."""
        ...

    def download(self, model: RegistryVersion, dest: Path) -> None:
        """Write the version's files (the package, unchanged) into ``dest``."""
        ...


class RestRegistry:
    """An ``mlflow server`` over its REST API (``/api/2.0/mlflow``), standard library only."""

    def __init__(self, base_url: str, timeout: float = REST_TIMEOUT_SECONDS) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise RegistryError(f"a registry server is reached over http(s), not {base_url!r}")
        self.base = base_url.rstrip("/")
        self.timeout = timeout

    def _get(self, endpoint: str, **params: str) -> Any:
        url = f"{self.base}{endpoint}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            # bandit B310 accepted: the base URL's scheme is checked to be http(s) in __init__
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # nosec B310
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            if exc.code in (400, 404):
                raise RegistryError(f"the registry refused {endpoint}: {detail}") from None
            raise RegistryUnreachable(f"the registry answered {exc.code} for {endpoint}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RegistryUnreachable(f"the registry at {self.base} is unreachable: {exc}") from None
        if endpoint.startswith("/api/2.0/mlflow-artifacts/artifacts/"):
            return body
        return json.loads(body)

    def resolve(self, name: str, *, alias: str | None = None, version: str | None = None) -> RegistryVersion:
        if alias is not None:
            data = self._get("/api/2.0/mlflow/registered-models/alias", name=name, alias=alias)
        else:
            data = self._get("/api/2.0/mlflow/model-versions/get", name=name, version=str(version))
        return RegistryVersion.from_rest(data["model_version"])

    def download(self, model: RegistryVersion, dest: Path) -> None:
        uri = self._get(
            "/api/2.0/mlflow/model-versions/get-download-uri", name=model.name, version=model.version
        )["artifact_uri"]
        if not uri.startswith("mlflow-artifacts:"):
            raise RegistryError(
                f"version {model.version} keeps its files at {uri!r}; a REST reader needs a server that "
                "proxies artifacts (mlflow server --artifacts-destination)"
            )
        root = urllib.parse.urlparse(uri).path.lstrip("/")
        self._download_tree(root, "", dest)

    def _download_tree(self, root: str, relative: str, dest: Path) -> None:
        listing = self._get("/api/2.0/mlflow-artifacts/artifacts", path=f"{root}/{relative}".rstrip("/"))
        for entry in listing.get("files", []):
            name = entry["path"].rsplit("/", 1)[-1]
            child = f"{relative}/{name}".lstrip("/")
            if ".." in Path(child).parts:
                raise RegistryError(f"the registry listed an unsafe path {child!r}")
            if entry.get("is_dir"):
                self._download_tree(root, child, dest)
                continue
            target = dest / child
            target.parent.mkdir(parents=True, exist_ok=True)
            quoted = urllib.parse.quote(f"{root}/{child}")
            target.write_bytes(self._get(f"/api/2.0/mlflow-artifacts/artifacts/{quoted}"))


class LocalRegistry:
    """A local store (the embedded ``sqlite:///`` default) through the MLflow client."""

    def __init__(self, tracking_uri: str) -> None:
        mlflow = import_mlflow()
        self.client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._artifacts = mlflow.artifacts
        self._exception = mlflow.exceptions.MlflowException
        self.tracking_uri = tracking_uri

    def resolve(self, name: str, *, alias: str | None = None, version: str | None = None) -> RegistryVersion:
        try:
            if alias is not None:
                mv = self.client.get_model_version_by_alias(name, alias)
            else:
                mv = self.client.get_model_version(name, str(version))
        except self._exception as exc:
            raise RegistryError(f"models:/{name}@{alias or version}: {exc.message}") from None
        return RegistryVersion.from_client(mv)

    def download(self, model: RegistryVersion, dest: Path) -> None:
        got = Path(
            self._artifacts.download_artifacts(
                artifact_uri=model.source, dst_path=str(dest), tracking_uri=self.tracking_uri
            )
        )
        if got.resolve() != dest.resolve():  # it lands in dest/<last path part>: lift it up
            for item in got.iterdir():
                shutil.move(str(item), dest / item.name)
            got.rmdir()


def open_reader(tracking_uri: str) -> RegistryReader:
    if tracking_uri.startswith(("http://", "https://")):
        return RestRegistry(tracking_uri)
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        raise RegistryUnreachable(f"there is no registry database at {tracking_uri}")
    return LocalRegistry(tracking_uri)
