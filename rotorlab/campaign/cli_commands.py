"""``rotorlab campaign SPEC -o DIR`` and ``rotorlab report DIR`` (picked up by :mod:`rotorlab.cli`).

Without the main CLI: ``python -m rotorlab.campaign campaign SPEC -o DIR`` and
``python -m rotorlab.campaign report DIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _resolve_spec(path: str) -> Path:
    """A spec file path, or the name of a bundled one (``demo`` → datasets/campaigns/demo.yaml)."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.suffix and len(p.parts) == 1:
        for base in _bundled_dirs():
            cand = base / f"{path}.yaml"
            if cand.is_file():
                return cand
    raise FileNotFoundError(f"no campaign spec file {path!r} (give a YAML/JSON file, or the name "
                            f"of a bundled spec: {', '.join(bundled_specs()) or 'none found'})")


def _bundled_dirs() -> list:
    from rotorlab._paths import datasets_dir

    try:
        d = datasets_dir() / "campaigns"
    except FileNotFoundError:
        return []
    return [d] if d.is_dir() else []


def bundled_specs() -> list:
    """Names of the campaign specs shipped in ``datasets/campaigns``."""
    return sorted({p.stem for d in _bundled_dirs() for p in d.glob("*.yaml")})


def _cmd_campaign(args) -> int:
    from rotorlab.campaign.runner import run_campaign
    from rotorlab.campaign.spec import CampaignSpec

    spec = CampaignSpec.load(_resolve_spec(args.spec))
    if args.dry_run:
        run_campaign(spec, args.output or ".", dry_run=True)
        return 0
    if not args.output:
        raise ValueError("give the campaign directory: -o DIR")
    try:
        state = run_campaign(spec, args.output, workers=args.workers,
                             scheduler=args.scheduler, retries=args.retries,
                             progress=not args.no_progress, collect=not args.no_collect)
    except KeyboardInterrupt:
        print(f"campaign interrupted: finished runs are kept, the others resume from their "
              f"last checkpoint when you submit again: rotorlab campaign {args.spec} -o "
              f"{args.output}")
        raise
    if not args.no_report and not args.no_collect:
        from rotorlab.campaign.figures import report

        report(args.output, collect=False)
    return 1 if state.failed() else 0


def _cmd_report(args) -> int:
    from rotorlab.campaign.figures import report

    report(args.directory, collect=not args.no_collect)
    return 0


def add_parsers(sub) -> None:
    """Add the ``campaign`` and ``report`` subcommands to an argparse subparsers object."""
    c = sub.add_parser("campaign", help="run a material x mode x temperature x replica study "
                                        "on Dask (resumable, fault tolerant)")
    c.add_argument("spec", help="campaign spec (YAML/JSON), or a bundled name such as 'demo'")
    c.add_argument("-o", "--output", help="campaign directory (new, empty, or an earlier "
                                          "submission of this campaign to continue)")
    c.add_argument("--workers", type=int, default=None,
                   help="workers of the local Dask cluster (default: one per core)")
    c.add_argument("--scheduler", default=None,
                   help="join an existing Dask cluster: tcp://HOST:PORT or a scheduler file")
    c.add_argument("--retries", type=int, default=None,
                   help="resubmissions of a failed run (default: the spec's 'retries')")
    c.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    c.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    c.add_argument("--no-collect", action="store_true",
                   help="do not analyse the runs into campaign.nc at the end")
    c.add_argument("--no-report", action="store_true", help="do not draw the report")
    c.set_defaults(func=_cmd_campaign)
    r = sub.add_parser("report", help="figures and an HTML summary of a campaign directory")
    r.add_argument("directory", help="campaign directory")
    r.add_argument("--no-collect", action="store_true",
                   help="draw from the existing campaign.nc without re-collecting")
    r.set_defaults(func=_cmd_report)


def main(argv=None) -> int:
    """Entry of ``python -m rotorlab.campaign``."""
    import sys

    p = argparse.ArgumentParser(prog="python -m rotorlab.campaign")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    args = p.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
