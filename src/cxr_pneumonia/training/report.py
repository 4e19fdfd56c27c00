"""Human-readable evaluation outputs: a Markdown report and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .metrics import roc_points


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _pct(v: float) -> str:
    return "n/a" if v != v else f"{100 * v:.1f}%"


def markdown_report(r: dict[str, Any]) -> str:
    b = r["pneumonia"]
    lines = [
        f"# Evaluation of {r['model']}",
        "",
        f"Data `{r['data']}` split `{r['split']}` (dataset version `{r['dataset_version']}`), {r['images']} images,"
        f" evaluated {r['evaluated']}. Model sha256 `{r['model_sha256']}`.",
        "",
        "| metric | value | 95% CI |",
        "|---|---|---|",
        f"| AUROC | {b['auroc']:.4f} | {b['auroc_ci95'][0]:.4f}–{b['auroc_ci95'][1]:.4f} |",
        f"| accuracy | {_pct(b['accuracy'])} | {_pct(b['accuracy_ci95'][0])}–{_pct(b['accuracy_ci95'][1])} |",
        f"| sensitivity | {_pct(b['sensitivity'])} | {_pct(b['sensitivity_ci95'][0])}–{_pct(b['sensitivity_ci95'][1])} |",
        f"| specificity | {_pct(b['specificity'])} | {_pct(b['specificity_ci95'][0])}–{_pct(b['specificity_ci95'][1])} |",
        f"| PPV | {_pct(b['ppv'])} | |",
        f"| NPV | {_pct(b['npv'])} | |",
        f"| F1 | {b['f1']:.4f} | |",
        f"| ECE (15 bins) | {r['ece']:.4f} | |",
        f"| Brier score | {r['brier']:.4f} | |",
        f"| refer rate | {_pct(r['refer_rate'])} | |",
        f"| conformal coverage | {_pct(r['conformal_coverage'])} | {_pct(r['conformal_coverage_ci95'][0])}–{_pct(r['conformal_coverage_ci95'][1])} |",
    ]
    if "subtype" in r:
        s = r["subtype"]
        lines.append(f"| bacterial vs viral AUROC ({s['n']} pneumonia cases) | {s['auroc']:.4f} | |")
        lines.append(f"| bacterial vs viral accuracy | {_pct(s['accuracy'])} | |")
    c = b["confusion"]
    lines += [
        "",
        f"Threshold {b['threshold']:.4f} on calibrated p(pneumonia). Confusion: TP {c['tp']}, FN {c['fn']}, FP {c['fp']}, TN {c['tn']}.",
        "",
        f"Quality gate: {sum(r['refused_by_gate'].values())} of {r['images']} images would be refused "
        f"({_pct(r['refusal_rate'])}): {r['refused_by_gate'] or 'none'}; unreadable: {r['unreadable']}.",
        "",
    ]
    return "\n".join(lines)


def plot_roc(y: np.ndarray, p: np.ndarray, report: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    fpr, tpr, _ = roc_points(y, p)
    b = report["pneumonia"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUROC {b['auroc']:.3f}")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.scatter([1 - b["specificity"]], [b["sensitivity"]], color="red", zorder=3, label="operating point")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("ROC: pneumonia vs normal")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(bins: list[dict[str, float]], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    if bins:
        ax.plot([b["confidence"] for b in bins], [b["frequency"] for b in bins], marker="o")
    ax.set_xlabel("predicted p(pneumonia)")
    ax.set_ylabel("observed frequency")
    ax.set_title("Reliability")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(confusion: dict[str, int], path: Path) -> None:
    plt = _pyplot()
    matrix = np.array([[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]])
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(matrix, cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, str(value), ha="center", va="center", fontsize=14)
    ax.set_xticks([0, 1], ["normal", "pneumonia"])
    ax.set_yticks([0, 1], ["normal", "pneumonia"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
