"""`python -m bench run|build|profile`: see bench/__init__.py and docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

from bench import environment

if TYPE_CHECKING:
    from bench.dataset import Manifest


def _prepare_database() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)


def ensure_dataset(*, factor: float, force: bool) -> Manifest:
    """Build the data set unless the one there matches; return its manifest."""
    from bench import dataset

    scale = dataset.Scale(factor)
    reason = "a rebuild was asked for" if force else dataset.why_rebuild(scale=scale)
    if reason is None:
        manifest = dataset.Manifest.load(dataset.manifest_path())
        assert manifest is not None, "why_rebuild() has just read it"
        print(f"Data set at scale {factor} is already built ({manifest.built_at}); reusing it. --rebuild to force.")
        return manifest
    counts = ", ".join(f"{value:,} {name}" for name, value in scale.counts().items())
    print(f"Building the data set ({reason}): {counts}.")
    manifest = dataset.build(scale=scale)
    print(f"Built in {manifest.build_seconds:.1f} s.")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "build the data set if needed, serve, load, report (what `make bench` does)"),
        ("build", "build the data set only"),
        ("profile", "profile each scenario's requests in-process with pyinstrument"),
        ("reminders", "time the reminder sweep only (bench/reminders.py), without serving"),
        ("campaign_pacing", "time a campaign's 10,000 invitations only (bench/campaign_pacing.py), without serving"),
        ("campaign_page", "time the campaign page at 10,000 rows only (bench/campaign_funnel.py), without serving"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--scale", type=float, default=1.0, help="1 = the issue's size (default)")
        command.add_argument("--rebuild", action="store_true", help="build the data set even if it matches")
        if name == "run":
            command.add_argument("--concurrency", type=int, default=2, help="clients at once (default 2)")
            command.add_argument("--requests", type=float, default=1.0, help="multiply each scenario's requests")
            command.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
            command.add_argument("--no-docs", action="store_true", help="don't write docs/benchmarks.md")
        if name == "profile":
            command.add_argument("--requests", type=int, default=200, help="requests per scenario (default 200)")
    args = parser.parse_args(argv)
    # Before anything of ours runs: is something else keeping the machine busy?
    load_at_start = os.getloadavg()[0]

    environment.apply()
    import django

    django.setup()
    started = time.monotonic()
    _prepare_database()
    manifest = ensure_dataset(factor=args.scale, force=args.rebuild)
    if args.command == "build":
        return 0
    if args.command == "reminders":
        import json

        from bench.reminders import reminder_sweep_bench

        print(json.dumps(reminder_sweep_bench(scale=manifest.scale), indent=2))
        return 0
    if args.command == "campaign_pacing":
        import json

        from bench.campaign_pacing import campaign_pacing_bench

        print(json.dumps(campaign_pacing_bench(scale=manifest.scale), indent=2))
        return 0
    if args.command == "campaign_page":
        import json

        from django.core.management import call_command

        from bench.campaign_funnel import campaign_funnel_bench

        # The page's template names static files: production settings read them from the manifest.
        call_command("collectstatic", interactive=False, verbosity=0)
        print(json.dumps(campaign_funnel_bench(scale=manifest.scale), indent=2))
        return 0
    if args.command == "profile":
        from bench.profile import profile_scenarios

        return profile_scenarios(manifest=manifest, requests=args.requests)
    from bench.run import run

    return run(args=args, manifest=manifest, started=started, load_at_start=load_at_start)


if __name__ == "__main__":
    sys.exit(main())
