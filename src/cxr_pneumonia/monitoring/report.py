"""``cxr monitor report``: an HTML page with PNG plots an engineer can attach to an incident.

From the database the service writes (monitoring_samples, monitoring_evaluations, reviews) and the served
package's reference: reference-vs-window histograms of the input statistics and outputs, drift scores
over time with the alarm threshold, the newest evaluation's tests, and a reliability diagram of the
reviewed cases.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..store.facade import Store
from .detector import KINDS
from .online import evaluations, window_samples
from .performance import performance, reliability, reviewed_cases
from .reference import Reference
from .sample import Sample

HISTOGRAMS = ("mean", "std", "p05", "p95", "side")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _histograms(reference: Reference, samples: list[Sample], out: Path) -> list[str]:
    plt = _pyplot()
    accepted = [s for s in samples if s.accepted]
    panels: list[tuple[str, np.ndarray, np.ndarray]] = [
        (f"input {name}", reference.numeric.get(name, np.empty(0)),
         np.array([s.numeric[name] for s in accepted if name in s.numeric]))
        for name in HISTOGRAMS
    ]  # fmt: skip
    panels.append(("OOD score", reference.ood, np.array([s.ood for s in accepted if s.ood is not None])))
    panels.append(("p(pneumonia)", reference.p, np.array([s.p for s in accepted if s.p is not None])))
    names = []
    for title, ref, window in panels:
        if ref.size == 0 and window.size == 0:
            continue
        fig, ax = plt.subplots(figsize=(4.2, 2.8), dpi=100)
        both = np.concatenate([ref, window]) if window.size else ref
        bins = np.linspace(float(both.min()), float(both.max()) + 1e-9, 25)
        ax.hist(ref, bins=bins, density=True, alpha=0.55, label=f"reference (n={ref.size})")
        if window.size:
            ax.hist(window, bins=bins, density=True, alpha=0.55, label=f"window (n={window.size})")
        ax.set_title(title)
        ax.legend(fontsize=7)
        fig.tight_layout()
        name = f"hist_{re.sub(r'[^a-z0-9]+', '_', title.lower()).strip('_')}.png"
        fig.savefig(out / name)
        plt.close(fig)
        names.append(name)
    return names


def _drift_over_time(history: list[Any], alpha: float, out: Path) -> str | None:
    if not history:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 3.2), dpi=100)
    times = [e.created_at for e in history]
    for kind in KINDS:
        ax.plot(times, [e.summary.get(kind, {}).get("score", 0.0) for e in history], label=kind)
    ax.axhline(-np.log10(alpha), color="grey", linestyle="--", linewidth=1, label=f"alpha {alpha}")
    for e in history:
        if any(e.summary.get(k, {}).get("alarm") for k in KINDS):
            ax.axvline(e.created_at, color="red", alpha=0.08)
    ax.set_ylabel("-log10 corrected p")
    ax.set_title("drift score by kind (red: an alarm)")
    ax.legend(fontsize=7, ncol=5)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out / "drift_over_time.png")
    plt.close(fig)
    return "drift_over_time.png"


def _reliability(cases: list[tuple[str, float, bool]], out: Path) -> str | None:
    if not cases:
        return None
    plt = _pyplot()
    p = np.array([c[1] for c in cases])
    truth = np.array([c[2] for c in cases], dtype=np.float64)
    bins = reliability(p, truth)
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    ax.plot([b["predicted"] for b in bins], [b["observed"] for b in bins], marker="o")
    for b in bins:
        ax.annotate(str(b["n"]), (b["predicted"], b["observed"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")  # fmt: skip
    ax.set_xlabel("mean p(pneumonia)")
    ax.set_ylabel("reviewed pneumonia rate")
    ax.set_title(f"reliability of {len(cases)} reviewed cases")
    fig.tight_layout()
    fig.savefig(out / "reliability.png")
    plt.close(fig)
    return "reliability.png"


def _number(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _row(test: dict[str, Any]) -> str:
    cells = [test["kind"], test["name"], str(test["n"]), _number(test.get("statistic"), ".4g"),
             _number(test.get("p_adjusted"), ".3g"), str(test["streak"]), "ALARM" if test["alarm"] else ""]  # fmt: skip
    return "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


def write_report(
    store: Store, reference: Reference, model_digest: str, out: Path, *, since: datetime, alpha: float,
    min_reviews: int,
) -> Path:  # fmt: skip
    """Write ``out/index.html`` and its PNGs; return the HTML's path."""
    out.mkdir(parents=True, exist_ok=True)
    samples = window_samples(store, model_digest, since=since, limit=20_000)
    history = evaluations(store, model_digest, since=since, limit=5_000)
    cases = [c for per_model in reviewed_cases(store, per_model=5_000).values() for c in per_model]
    images = [*_histograms(reference, samples, out)]
    drift = _drift_over_time(history, alpha, out)
    calibration = _reliability(cases, out)
    e = html.escape
    rows = "".join(_row(test) for test in (history[-1].results if history else []))
    reviewed = performance(cases, min_reviews)
    summary = ", ".join(
        f"{k} {reviewed[k]['value']:.3f} (95% CI {reviewed[k]['ci95'][0]:.3f}-{reviewed[k]['ci95'][1]:.3f})"
        for k in ("sensitivity", "specificity", "ppv") if reviewed.get(k)
    )  # fmt: skip
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CXR monitoring report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}img{{margin:4px;border:1px solid #ddd}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}</style></head>
<body><h1>CXR monitoring report</h1>
<p>Model package digest <code>{e(model_digest)}</code>; since {e(since.isoformat())};
{len(samples)} monitored inputs ({sum(not s.accepted for s in samples)} refused); {len(history)} evaluations;
reference: {reference.size} images ({e(str(reference.info.get("selection", "")))}).</p>
<h2>Drift over time</h2>{f'<img src="{drift}" alt="drift over time">' if drift else "<p>No evaluation yet.</p>"}
<h2>Newest evaluation</h2>
<table><tr><th>kind</th><th>test</th><th>n</th><th>statistic</th><th>corrected p</th><th>streak</th><th></th></tr>
{rows}</table>
<h2>Reference vs window</h2>{"".join(f'<img src="{name}" alt="{e(name)}">' for name in images)}
<h2>Reviewed cases</h2>
<p>{reviewed["n"]} reviewed cases. {e(summary) if reviewed["reported"] else f"Fewer than {min_reviews}: not reported."}
{f" ECE {reviewed['ece']:.3f}." if reviewed.get("ece") is not None else ""}</p>
{f'<img src="{calibration}" alt="reliability diagram">' if calibration else ""}
</body></html>
"""
    index = out / "index.html"
    index.write_text(page)
    return index
