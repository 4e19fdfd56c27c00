"""Real DICOM peers for the node's tests: Orthanc (a PACS) and dcmtk's echoscu/storescu on loopback."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from ports import free_port

NODE_AE = "CXR_AI"
ORTHANC_AE = "ORTHANC"
SENDER_AE = "STORESCU"


def find_binary(name: str) -> str | None:
    """A system tool (dcmtk, Orthanc) on PATH, never a same-named script in this virtualenv (pynetdicom
    installs its own `storescu` and `echoscu`, which take other options), then /usr/sbin, where
    Debian installs Orthanc and which is not on every user's PATH."""
    venv_bin = str(Path(sys.prefix) / "bin")
    entries = [e for e in os.environ.get("PATH", "").split(os.pathsep) if e and e != venv_bin]
    return shutil.which(name, path=os.pathsep.join([*entries, "/usr/sbin", "/usr/local/sbin"]))


class Orthanc:
    """One Orthanc process with its own storage, on loopback ports; restartable with the same state."""

    def __init__(
        self, binary: str, root: Path, peers: dict[str, tuple[str, int]], extra: dict[str, Any] | None = None
    ) -> None:
        self.binary = binary
        self.root = root
        self.config = root / "orthanc.json"
        self.log = root / "orthanc.log"
        root.mkdir(parents=True, exist_ok=True)
        self._peers = peers
        self._extra = extra or {}
        self._ports_published = False  # once a peer knows our port, it must not change
        self.process: subprocess.Popen[bytes] | None = None
        self._choose_ports()

    def _choose_ports(self) -> None:
        """Two free loopback ports, written into the configuration. A port free when asked can be
        taken before Orthanc binds it (an outgoing connection's ephemeral port, another test), so
        start() chooses again while no peer has been told the old one."""
        self.dicom_port = free_port()
        self.http_port = free_port()
        peers, extra = self._peers, self._extra
        config: dict[str, Any] = {
            "Name": "cxr-test-pacs",
            "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "storage"),
            "DicomAet": ORTHANC_AE,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": True,
            "DicomModalities": {name.lower(): [ae, "127.0.0.1", port] for name, (ae, port) in peers.items()},
            "Plugins": [],
            "SaveJobs": False,
            "StableAge": 1,
            **extra,
        }
        self.config.write_text(json.dumps(config, indent=2))
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=30)

    @property
    def destination(self) -> str:
        self._ports_published = True
        return f"{ORTHANC_AE}@127.0.0.1:{self.dicom_port}"

    def start(self) -> None:
        for _attempt in range(5):
            if self._start_once():
                self._ports_published = True
                return
            if self._ports_published:
                time.sleep(1)  # peers know this port: wait for it to be released
            else:
                self.http.close()
                self._choose_ports()
        raise RuntimeError(f"Orthanc found its ports taken five times:\n{self.log.read_text()[-3000:]}")

    def _start_once(self) -> bool:
        """True once Orthanc answers; False if it exited because a port was taken."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                this_run = self.log.read_bytes()[offset:].decode(errors="replace")
                if "already in use" in this_run:
                    return False
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}:\n{this_run[-3000:]}")
            try:
                if self.http.get("/system").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"Orthanc did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    # ---- REST ----------------------------------------------------------------------------------
    def instances(self) -> list[str]:
        return list(self.http.get("/instances").raise_for_status().json())

    def tags(self, instance: str) -> dict[str, Any]:
        return dict(self.http.get(f"/instances/{instance}/simplified-tags").raise_for_status().json())

    def file(self, instance: str) -> bytes:
        return self.http.get(f"/instances/{instance}/file").raise_for_status().content

    def dataset(self, instance: str) -> Any:
        import pydicom

        return pydicom.dcmread(io.BytesIO(self.file(instance)))

    def wait_for_instances(self, count: int, timeout: float = 120) -> list[str]:
        deadline = time.monotonic() + timeout
        found: list[str] = []
        while time.monotonic() < deadline:
            found = self.instances()
            if len(found) >= count:
                return found
            time.sleep(0.3)
        raise AssertionError(f"Orthanc holds {len(found)} instance(s) after {timeout} s, expected {count}")

    def by_modality(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for instance in self.instances():
            groups.setdefault(self.tags(instance).get("Modality", ""), []).append(instance)
        return groups


# storescu proposes uncompressed syntaxes unless told otherwise, and cannot transcode JPEG 2000: so
# each file is sent with the option that proposes its own (compressed) transfer syntax.
_PROPOSE = {
    "1.2.840.10008.1.2.4.50": "--propose-jpeg8",
    "1.2.840.10008.1.2.4.51": "--propose-jpeg12",
    "1.2.840.10008.1.2.4.70": "--propose-lossless",
    "1.2.840.10008.1.2.4.90": "--propose-j2k-lossless",
    "1.2.840.10008.1.2.4.91": "--propose-j2k-lossy",
    "1.2.840.10008.1.2.4.80": "--propose-jls-lossless",
    "1.2.840.10008.1.2.4.81": "--propose-jls-lossy",
    "1.2.840.10008.1.2.5": "--propose-rle",
}


def tls_arguments(tls: tuple[Path, Path, Path] | None) -> list[str]:
    """dcmtk's options for an authenticated TLS connection: (private key, certificate, trusted CA)."""
    if tls is None:
        return []
    key, cert, ca = tls
    return ["+tls", str(key), str(cert), "+cf", str(ca)]


def storescu(
    dcmtk: dict[str, str],
    port: int,
    files: list[Path],
    *,
    calling: str = SENDER_AE,
    called: str = NODE_AE,
    tls: tuple[Path, Path, Path] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Send ``files`` with dcmtk's storescu in their own transfer syntaxes (one run per syntax); the
    result's returncode is the first failure's, its output all runs' output."""
    import pydicom

    groups: dict[str, list[Path]] = {}
    for path in files:
        syntax = str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        groups.setdefault(_PROPOSE.get(syntax, "--propose-little"), []).append(path)
    runs = []
    for option, paths in groups.items():
        command = [dcmtk["storescu"], "-aet", calling, "-aec", called, "--required", option,
                   *tls_arguments(tls), "127.0.0.1", str(port), *map(str, paths)]  # fmt: skip
        runs.append(subprocess.run(command, capture_output=True, text=True, timeout=180, check=False))
    failed = [run for run in runs if run.returncode != 0]
    return subprocess.CompletedProcess(
        [run.args for run in runs],
        failed[0].returncode if failed else 0,
        "".join(run.stdout for run in runs),
        "".join(run.stderr for run in runs),
    )


def echoscu(
    dcmtk: dict[str, str],
    port: int,
    *,
    calling: str = SENDER_AE,
    called: str = NODE_AE,
    tls: tuple[Path, Path, Path] | None = None,
) -> subprocess.CompletedProcess[str]:
    command = [dcmtk["echoscu"], "-aet", calling, "-aec", called, *tls_arguments(tls), "127.0.0.1", str(port)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def audit_events(store: Any, action: str | None = None) -> list[Any]:
    """Audit rows written through the real Store's database."""
    from sqlalchemy import select

    from cxr_pneumonia.store.db.models import AuditEvent

    with store.transaction() as session:
        query = select(AuditEvent).order_by(AuditEvent.seq)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        return list(session.scalars(query))


def prediction_records(store: Any) -> list[Any]:
    from sqlalchemy import select

    from cxr_pneumonia.store.db.models import PredictionRecord

    with store.transaction() as session:
        return list(session.scalars(select(PredictionRecord).order_by(PredictionRecord.created_at)))


def wait_for(probe: Any, timeout: float = 10.0, interval: float = 0.1) -> Any:
    """Poll ``probe()`` until it returns something truthy (events written on another thread)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
