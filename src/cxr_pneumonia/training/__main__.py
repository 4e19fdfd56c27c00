"""``torchrun --nproc_per_node N -m cxr_pneumonia.training --data ... --out ...``: one rank per process."""

from .. import config as _telemetry_off  # noqa: F401 - imported first: it turns library telemetry off
from .launch import main

raise SystemExit(main())
