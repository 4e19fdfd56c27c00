"""Registry downloads, kept under the data dir in one folder per package digest, verified before use.

An index (``index.json``) remembers which digest each URI last resolved to, so that a service started
while the registry is unreachable can still serve the package it had (and say it is degraded).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..package import ModelPackage
from .reader import RegistryReader, RegistryVersion
from .uri import ModelURI

INDEX_NAME = "index.json"
_index_lock = threading.Lock()


@dataclass(frozen=True)
class Fetched:
    path: Path
    version: str
    digest: str
    degraded: str | None = None  # why the registry was not asked (served from the cache)


class PackageCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, digest: str) -> Path:
        return self.root / digest

    def fetch(self, reader: RegistryReader, model: RegistryVersion) -> Path:
        """The verified package of ``model``, downloaded once per digest."""
        if not model.digest:
            raise ModelError(f"{model.name} version {model.version} has no cxr.digest tag: not a package")
        target = self.folder(model.digest)
        if target.is_dir():
            return target
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=self.root))
        try:
            reader.download(model, staging)
            package = ModelPackage.open(staging)  # every file's sha256, before it can be served
            if package.manifest.digest != model.digest:
                raise ModelError(
                    f"{model.name} version {model.version}: the files' digest {package.manifest.digest[:12]}… "
                    f"is not the registered {model.digest[:12]}…"
                )
            try:
                os.replace(staging, target)  # atomic: a folder named by a digest is always whole
            except OSError:
                if not target.is_dir():  # another process won the race with the same files
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def remember(self, uri: ModelURI, fetched: Fetched) -> None:
        with _index_lock:
            index = self._index()
            index[uri.text] = {"digest": fetched.digest, "version": fetched.version}
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / f".{INDEX_NAME}.tmp"
            tmp.write_text(json.dumps(index, indent=1))
            os.replace(tmp, self.root / INDEX_NAME)

    def last_known(self, uri: ModelURI) -> Fetched | None:
        entry = self._index().get(uri.text)
        if not entry or not self.folder(entry["digest"]).is_dir():
            return None
        return Fetched(self.folder(entry["digest"]), str(entry["version"]), str(entry["digest"]))

    def _index(self) -> dict[str, dict[str, str]]:
        path = self.root / INDEX_NAME
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}
