"""All settings in one object. Nothing else in the package reads the environment."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_ROOT = Path(__file__).resolve().parent
# The bundled model ships in the repository's models/ folder (a source checkout) ...
_REPO_MODELS = PACKAGE_ROOT.parent.parent / "models"
BUNDLED_MODEL_NAME = "cxr-effnet-lite0-v29"


# Usage telemetry of the libraries this project imports, sent to outside hosts unless switched off.
# Set before any of them is imported (config is imported first by every door); CXR_TELEMETRY=true
# leaves the libraries' own defaults alone, for a user who wants to send it.
TELEMETRY_SWITCHES = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # MLflow 3 (only CI=true turns it off by itself)
    "RAY_USAGE_STATS_ENABLED": "0",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DVC_NO_ANALYTICS": "1",  # the dvc command (docs/data.md; the tests run it)
    "DO_NOT_TRACK": "true",  # the cross-tool convention (MLflow, Gradio, Streamlit and others honour it)
}


def quiet_telemetry() -> None:
    if os.environ.get("CXR_TELEMETRY", "").strip().lower() in ("1", "true", "yes", "on"):
        return
    for name, value in TELEMETRY_SWITCHES.items():
        os.environ[name] = value


quiet_telemetry()


def default_model_path() -> Path:
    return _REPO_MODELS / BUNDLED_MODEL_NAME


class Settings(BaseSettings):
    """Settings read from ``CXR_*`` environment variables (and a ``.env`` file if present)."""

    model_config = SettingsConfigDict(env_prefix="CXR_", env_file=".env", extra="ignore")

    # Where the service keeps its state (SQLite database, outbox, keys) by default.
    data_dir: Path = Field(default=Path("var"))
    model_path: Path = Field(default_factory=default_model_path)
    shared_data: Path | None = None
    # What the Predictor derives from a package and can rebuild (the graph's linear head, keyed by
    # model.onnx's sha256), so a start need not parse the graph with onnx (0.8 s just to import it).
    # Default: $XDG_CACHE_HOME/cxr-pneumonia, else ~/.cache/cxr-pneumonia. Unwritable: not cached.
    cache_dir: Path | None = None

    # Input limits, checked before full decoding.
    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 20_000_000  # the largest CR/DX detector is ~18.5 MP; 4200x4200 (17.6 MP) passes
    # Memory bounded by design (imaging/memory.py): decoded images are reduced to this many pixels a
    # side right after the codec, and at most this many decodes run at once per process (0: unbounded).
    decode_max_side: int = 2048
    decode_concurrency: int = 2
    min_side: int = 64

    # Serving
    database_url: str | None = None
    redis_url: str | None = None
    store_images: bool = False
    image_key: str | None = None
    image_key_file: Path | None = None
    jwt_secret: str | None = None  # one fixed JWT key; unset: rotatable keys in the database
    token_minutes: int = 30  # access tokens; a refresh token (rotated on use) gets the next one
    refresh_hours: int = 12  # how long a sign-in lasts without a password (a shift)
    mfa_required: bool = False  # admin and auditor accounts must enrol TOTP before doing anything
    metrics_public: bool = True
    rate_limit: str = "120/minute"
    rate_limit_anonymous: str = "30/minute"
    # Sign-in throttling (service/login_throttle.py): free failures per (account, address) and per
    # account before a lock that doubles with each further failure; the address alone has only a high
    # rate limit (a hospital's users often share one NAT address).
    login_free_failures: int = 5
    login_free_failures_account: int = 20
    login_backoff_initial_seconds: float = 2.0
    login_backoff_max_seconds: float = 900.0
    login_rate_address: str = "600/minute"
    batch_max_files: int = 32
    result_cache_size: int = 512
    log_level: str = "INFO"
    telemetry: bool = False  # libraries' usage telemetry; off unless true (applied by quiet_telemetry)
    log_format: Literal["text", "json"] = (
        "text"  # or "json": one object a line (logs.py), for the service and the DICOM node
    )
    # `cxr serve` over TLS (named like the DICOM node's CXR_DICOM_TLS_*): certificate chain and key
    # (PEM, unencrypted); with a CA bundle every client must present a certificate it signed.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    # REST service (service/): request caps, per-address limit, shared-store namespace, web page folder.
    batch_max_bytes: int = 256 * 1024 * 1024  # whole POST /predict/batch body, multipart overhead included
    rate_limit_client: str = "600/minute"  # per client address, over all credentials it presents
    redis_prefix: str = "cxr"  # namespace of rate-limit and result-cache keys in a shared Redis
    web_dir: Path = Field(default_factory=lambda: PACKAGE_ROOT / "web" / "static")
    inference_concurrency: int = 0  # inferences running at once per process; 0: one per CPU core
    # Set by `cxr serve --workers N` (N > 1) for prometheus-client's multiprocess mode; not CXR_-prefixed.
    prometheus_multiproc_dir: Path | None = Field(default=None, validation_alias="PROMETHEUS_MULTIPROC_DIR")

    # Inference
    intra_op_threads: int = 0  # 0: ONNX Runtime chooses (one per core)

    # Production monitoring (monitoring/): drift windows against the package's reference, alarm rule,
    # database bounds, and the reviews needed before performance is reported.
    monitoring_enabled: bool = True
    monitoring_window: int = 50  # newest inputs per window
    monitoring_window_seconds: float = 86_400.0  # and none older than this
    monitoring_min_count: int = 30  # values a test needs in the window
    monitoring_eval_every: int = 5  # evaluate after this many inputs ...
    monitoring_eval_seconds: float = 60.0  # ... or this long after the last evaluation
    monitoring_alpha: float = 0.01  # per kind, Holm-corrected
    monitoring_persistence: int = 3  # consecutive significant evaluations before an alarm
    monitoring_keep_samples: int = 20_000  # rows kept in monitoring_samples (oldest pruned)
    monitoring_keep_evaluations: int = 5_000  # rows kept in monitoring_evaluations
    monitoring_min_reviews: int = 30  # reviewed cases before sensitivity etc. are reported
    monitoring_review_window: int = 500  # newest reviews per model version in the rolling performance
    monitoring_reference_images: int = 800  # cap on images when a reference is built
    # Data to build a reference from when the package has none (default: its training data_source).
    monitoring_reference_data: Path | None = None

    # FHIR push (integration/fhir_push.py): each accepted prediction as a Bundle POSTed to this FHIR
    # base URL, from a persistent outbox in data_dir/fhir. Unset: no push (GET .../fhir still works).
    fhir_url: str | None = None
    fhir_timeout_seconds: float = 30.0
    fhir_retry_initial_seconds: float = 5.0  # first back-off after a failed push, doubled each time
    fhir_retry_max_seconds: float = 300.0
    fhir_retry_max_attempts: int = 0  # 0: retry forever; otherwise park the bundle in fhir/outbox-failed

    # Training / registry (registry/, docs/models.md)
    mlflow_tracking_uri: str | None = (
        None  # default: sqlite:///<data_dir>/mlflow.sqlite3; production: http://mlflow:5000
    )
    # What to serve: a package path or models:/NAME@ALIAS | models:/NAME/VERSION; None: model_path.
    model_uri: str | None = None
    shadow_model_uri: str | None = None  # run on every accepted input, stored, never returned
    ab_model_uri: str | None = None  # the challenger arm of an A/B split
    ab_percent: float = Field(default=0.0, ge=0.0, le=100.0)  # share of inputs the challenger answers
    model_poll_seconds: float = 60.0  # how often the service checks whether a served alias moved; 0: never
    model_cache_dir: Path | None = (
        None  # registry downloads, one folder per digest; default data_dir/model-cache
    )
    shadow_queue_size: int = 256  # shadow inputs waiting; beyond it they are dropped and counted
    registry_model_name: str = "cxr-pneumonia"  # the registered model `cxr models` works on by default
    # The promotion gate: the site's evaluation dataset version (None: the champion's training data
    # version), the split, and how much worse than the champion a candidate may be on each metric.
    evaluation_dataset_version: str | None = None
    evaluation_split: str = "test"
    gate_auroc_tolerance: float = 0.005
    gate_sensitivity_tolerance: float = 0.01
    gate_ece_tolerance: float = 0.01
    # Training jobs from the service (jobs/, docs/jobs.md): the folders train/tune jobs may read datasets
    # and configs from (comma-separated; empty: none, so only recalibrate jobs can run), how often a
    # running job's process reports, and after how long without a report it counts as interrupted.
    job_data_roots: str = ""
    job_heartbeat_seconds: float = Field(default=5.0, gt=0)
    job_stale_seconds: float = Field(default=120.0, gt=0)
    job_log_lines: int = Field(default=200, ge=10)  # the log tail GET /admin/jobs/{id} returns
    # `cxr predict --ray ADDRESS`: the address of this machine's Ray node the driver attaches to
    # (Ray guesses the machine's network address otherwise; a cluster on loopback needs it named).
    ray_node_ip: str | None = None

    # DICOM node (`cxr dicom-node`): CLI options override these.
    dicom_ae_title: str = "CXR_AI"
    # bandit B104 accepted: a PACS on another host must reach the node; callers are restricted by AE title and TLS
    dicom_bind: str = "0.0.0.0"  # nosec B104
    dicom_port: int = 11112
    dicom_accept_aes: str = ""  # comma-separated calling AE titles allowed to associate; empty: any
    dicom_destination: str | None = None  # AE@HOST:PORT that receives the SR and Secondary Capture
    dicom_spool_dir: Path | None = None  # received-instance queue and result outbox; default data_dir/dicom
    # STOW-RS results out: a DICOMweb base URL (e.g. http://pacs/dicom-web) instead of a DIMSE destination
    dicom_destination_dicomweb: str | None = None
    # STOW-RS intake (POST /dicomweb/studies on the service; instances go to the node's spool): one
    # request's whole body; each instance is also held to max_bytes.
    dicomweb_max_request_bytes: int = 512 * 1024 * 1024
    dicom_retry_initial_seconds: float = 5.0  # first back-off after a failed send, doubled each time
    dicom_retry_max_seconds: float = 300.0
    dicom_retry_max_attempts: int = 0  # 0: retry forever; otherwise park the result in outbox/failed
    dicom_timeout_seconds: float = 30.0  # association and DIMSE timeouts towards the destination
    dicom_keep_received: bool = False  # keep received instances (spool/kept) after processing
    dicom_refusal_sr: bool = False  # send an SR saying why an instance was not analysed
    dicom_tls: bool = False  # listen with TLS only (needs the certificate and key below)
    dicom_destination_tls: bool = False  # send results to the destination over TLS
    dicom_tls_cert: Path | None = None  # this node's certificate chain, PEM
    dicom_tls_key: Path | None = None  # its private key, PEM (unencrypted)
    dicom_tls_ca: Path | None = (
        None  # CA bundle of the peers; when listening, callers must present a cert it signed
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cxr.sqlite3').resolve()}"

    @property
    def job_data_root_paths(self) -> list[Path]:
        return [Path(p.strip()).resolve() for p in self.job_data_roots.split(",") if p.strip()]

    @property
    def resolved_jobs_dir(self) -> Path:
        return self.data_dir / "jobs"  # one folder per job: its log, its package

    @property
    def resolved_dicom_spool_dir(self) -> Path:
        return self.dicom_spool_dir or self.data_dir / "dicom"

    @property
    def served_model_uri(self) -> str:
        return self.model_uri or str(self.model_path)

    @property
    def resolved_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "cxr-pneumonia"

    @property
    def resolved_model_cache(self) -> Path:
        return self.model_cache_dir or self.data_dir / "model-cache"

    @property
    def resolved_mlflow_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.sqlite3').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
