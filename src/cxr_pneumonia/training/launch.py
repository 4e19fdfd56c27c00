"""The torchrun entry (``python -m cxr_pneumonia.training``, started once per rank) and the launcher
behind ``cxr train --nproc N`` (one machine, N ranks)."""

from __future__ import annotations

import argparse
import os
import subprocess  # nosec B404
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..errors import CXRError
from .config import resolve_config
from .distributed import per_rank_batch

PROG = "python -m cxr_pneumonia.training"


def parser() -> argparse.ArgumentParser:
    """The options of ``cxr train`` that a rank needs (the same names, so a command line carries over)."""
    parse = argparse.ArgumentParser(prog=PROG, description="One training rank (start it with torchrun).")
    parse.add_argument("--data", type=Path, required=True, help="dataset folder or CSV")
    parse.add_argument("--out", type=Path, required=True, help="run directory (shared by every rank)")
    parse.add_argument("--config", type=Path, default=None, help="YAML training config")
    parse.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    parse.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parse.add_argument("--max-images", type=int, default=None, help="use at most this many train images")
    return parse


def rank_arguments(
    data: Path, out: Path, config: Path | None, resume: bool, epochs: int | None, max_images: int | None
) -> list[str]:
    """``cxr train``'s options as ``parser()`` reads them."""
    args = ["--data", str(data), "--out", str(out)]
    if config is not None:
        args += ["--config", str(config)]
    if resume:
        args.append("--resume")
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    if max_images is not None:
        args += ["--max-images", str(max_images)]
    return args


def launch(nproc: int, batch_size: int, args: list[str]) -> int:
    """torchrun with ``nproc`` ranks on this machine (a standalone rendezvous on a free local port);
    returns its exit status. Gloo talks over loopback unless GLOO_SOCKET_IFNAME says otherwise."""
    per_rank_batch(batch_size, nproc)  # refused here, before any process starts
    env = dict(os.environ)
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    command += ["-m", "cxr_pneumonia.training", *args]
    # bandit B603 accepted: torch's own launcher under our interpreter, a fixed argv, no shell
    return subprocess.run(command, env=env, check=False).returncode  # nosec B603


def main(argv: list[str] | None = None) -> int:
    from .run import train

    args = parser().parse_args(argv)
    console = Console()
    try:
        cfg = resolve_config(args.config, args.out, args.resume, args.epochs, args.max_images)
        result = train(args.data, args.out, cfg, resume=args.resume, console=console)
    except CXRError as exc:
        Console(stderr=True).print(f"[red]error[/red] {escape(f'[{exc.code}]')} {escape(exc.detail)}")
        return 2
    if result.rank:
        return 0
    console.print(f"best epoch {result.best_epoch}, validation AUROC {result.val_auroc:.4f}")
    console.print(f"package: {result.package_dir}")
    return 0
