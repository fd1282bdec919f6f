"""``python -m bench``: every benchmark, then a summary whose last line is ``ratio: X``.

Sizes come from options or ``BENCH_*`` environment variables; ``make bench`` runs the
small defaults (a few minutes). The machine is shared and has two cores: the figures
are noisy, and a run says so beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bare import bare_throughput, history_counts
from bench.bare_shape import bare_shape_throughput, bare_shape_verify_latency
from bench.bare_shape_worker import worker_process
from bench.common import Mailbox, machine, say
from bench.cpu import CpuMeter, idle_cpu, stack_cpu
from bench.lifecycle import lifecycle_throughput, office_of, verify_latency
from bench.office_pages import office_pages
from bench.open_emails import OpenEmails, open_emails
from bench.profile import profiles
from bench.profile import summary as profile_summary
from bench.two_of_each import two_of_each
from bench.uploads import upload_memory
from domain.secure_email import workflow_id_for
from infra.temporal.client import connect
from tests.fixtures.devstack import DevStack, securemail_dev
from tests.fixtures.postgres import fresh_postgres

ALL = ("uploads", "lifecycles", "verify", "open", "pages")
# The product's own processes; the rest of the stack is Temporal, mail and storage.
PROFILED = ("worker", "web")
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("domain", "infra", "activities", "workflows", "web", "workers")


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _counts(text: str) -> list[int]:
    return [int(count) for count in text.split(",")]


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--lifecycles", type=int, default=_env_int("BENCH_LIFECYCLES", 40))
    # 8 at once left the cores idle while lifecycles waited on mail; 16 keeps them busy.
    parser.add_argument("--concurrency", type=int, default=_env_int("BENCH_CONCURRENCY", 16))
    parser.add_argument("--verifies", type=int, default=_env_int("BENCH_VERIFIES", 48))
    parser.add_argument(
        "--open-emails",
        type=_counts,
        default=_counts(os.environ.get("BENCH_OPEN_EMAILS", "500")),
        help="comma-separated sizes, each its own run: 500,10000 is the long mode",
    )
    parser.add_argument("--office-rows", type=int, default=_env_int("BENCH_OFFICE_ROWS", 100_000))
    parser.add_argument(
        "--databases",
        default=os.environ.get("BENCH_DATABASES", "sqlite"),
        help="comma-separated: sqlite, postgresql (the local server on 127.0.0.1:5432)",
    )
    parser.add_argument(
        "--only", default=os.environ.get("BENCH_ONLY", ",".join(ALL)), help=",".join(ALL)
    )
    parser.add_argument(
        "--stack-database",
        choices=("sqlite", "postgresql"),
        default=os.environ.get("BENCH_STACK_DATABASE", "sqlite"),
        help="the read model's database for uploads, lifecycles, verify (the embedded "
        "stack) and open: SQLite as `make run` has it, or a fresh PostgreSQL database as "
        "production has it",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--workers", type=int, default=1, help="above 1 (or --webs): lifecycles, N vs 1 of each"
    )
    parser.add_argument("--webs", type=int, default=1, help="web processes, with --workers")
    parser.add_argument(
        "--profile",
        nargs="?",
        const=Path("bench-profiles"),
        type=Path,
        help="py-spy the worker and the web app during the lifecycles: flame graphs "
        "(SVG) and collapsed stacks in this directory (default: bench-profiles)",
    )
    parser.add_argument(
        "--code",
        help="run the embedded stack from this commit's code (git archive), for a "
        "before/after measured by this bench; alternate runs with and without it",
    )
    return parser.parse_args()


@contextmanager
def measured(meter: CpuMeter, profile: Path | None, stack: DevStack) -> Iterator[None]:
    """The CPU meter over the timed part, and py-spy beside it with ``--profile``."""
    with (
        meter,
        profiles({name: stack.child(name) for name in PROFILED}, profile)
        if profile
        else nullcontext(),
    ):
        yield


def compile_bytecode() -> None:
    """Our packages' bytecode, written ahead as the image does (``UV_COMPILE_BYTECODE``):
    where ``PYTHONDONTWRITEBYTECODE`` is set and nothing wrote it, every sandboxed
    workflow instance would compile its workflow module from source again, work that
    production does not do (Python still reads bytecode it is not allowed to write)."""
    for package in PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=1)


@contextmanager
def code_first(ref: str | None, directory: Path) -> Iterator[None]:
    """With ``ref``, the stack started inside runs that commit's code (its packages first
    on ``PYTHONPATH``), driven by this checkout's bench: a before/after of the product
    measured by the same bench, runs alternating."""
    if ref is None:
        yield
        return
    from bench.routes import code_of  # bench.routes imports this module

    kept = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(code_of(ref, directory))
    try:
        yield
    finally:
        if kept is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = kept


@contextmanager
def stack_output_on_failure(stack: DevStack) -> Iterator[None]:
    """A broken run shows what the web app and the worker logged (the stack's directory
    goes with the run)."""
    try:
        yield
    except Exception:
        for name in ("web", "worker"):
            log = stack.data_dir / "logs" / f"{name}.log"
            lines = log.read_text(errors="replace").splitlines() if log.exists() else []
            problems = [line for line in lines if "ERROR" in line or "Traceback" in line]
            say(f"\n[embedded stack] {name}.log: {len(problems)} error line(s), the last:")
            say("\n".join(problems[-5:] + ["..."] + lines[-15:]))
        say("\n".join(["[embedded stack] securemail dev:", *stack.output.splitlines()[-10:]]))
        raise


async def stack_benchmarks(
    args: argparse.Namespace,
    only: set[str],
    figures: dict[str, Any],
    workdir: Path,
    database_url: str | None,
) -> None:
    """Uploads, lifecycles and Verify on one embedded stack (``database_url``: None for
    the stack's own SQLite file)."""
    with (
        code_first(args.code, workdir / "code"),
        securemail_dev(workdir / "stack", database_url=database_url) as stack,
        stack_output_on_failure(stack),
    ):
        stack.wait_until_ready()
        client = await connect(stack.settings())
        async with office_of(stack.web, stack.api_token(), Mailbox(stack.maildir)) as office:
            if "uploads" in only:
                say("\n[3] upload memory: 4 concurrent 20 MB uploads, web app RSS")
                up = await upload_memory(office, stack.child("web"))
                say(
                    f"  RSS before {up.before_mib:.0f} MiB, peak {up.peak_mib:.0f} MiB "
                    f"({up.peak_source}): growth {up.growth_mib:.1f} MiB "
                    f"for {up.uploads} x {up.size_mib:.0f} MiB in {up.seconds:.1f} s"
                )
                figures["uploads"] = vars(up) | {"growth_mib": up.growth_mib}
            idle: dict[str, float] = {}
            if only & {"lifecycles", "verify"}:
                # What the stack uses with nothing moving but the driver's pollers (the
                # office's alerts every 0.1 s, the mailbox) and its own rounds: paid per
                # second, not per lifecycle, so it is taken off the per-lifecycle figures
                # below (a slower run would otherwise look costlier per lifecycle).
                idle = await idle_cpu(lambda: stack_cpu(stack))
                say(
                    "\n  idle stack (the driver's pollers only), CPU ms per second: "
                    + ", ".join(f"{name} {rate * 1000:.1f}" for name, rate in idle.items())
                )
            if "lifecycles" in only:
                n, c = args.lifecycles, args.concurrency
                say(
                    f"\n[1] throughput: {n} lifecycles, {n} bare-shape and {n} bare "
                    f"workflows; concurrency {c} (at once)"
                )
                life_cpu, shape_cpu = stack_cpu(stack), stack_cpu(stack)
                timed = measured(life_cpu, args.profile, stack)
                life = await lifecycle_throughput(office, n, c, timed)
                say(f"  lifecycles/s: {life.per_second:.2f} (each: {life.each.summary()})")
                # Its worker in a process of its own, as the product's: its CPU is then
                # the SDK's floor for this shape, apart from the driver's.
                shape, shape_id = await bare_shape_throughput(
                    client,
                    n,
                    c,
                    shape_cpu,
                    lambda queue: worker_process(stack.settings(), queue, shape_cpu),
                )
                say(f"  bare-shape/s: {shape:.2f}")
                say(f"  CPU per lifecycle:  {life_cpu.per(n)}")
                say(f"  CPU per bare-shape: {shape_cpu.per(n)} (worker: its own, no-op bodies)")
                say(f"  net of idle, per lifecycle:  {life_cpu.per(n, idle)}")
                say(f"  net of idle, per bare-shape: {shape_cpu.per(n, idle)}")
                bare, bare_id = await bare_throughput(client, n, c)
                say(f"  bare/s (one activity, one update; reference): {bare:.2f}")
                life_id = workflow_id_for(life.sample_id)
                life_work = await history_counts(client, life_id)
                shape_work = await history_counts(client, shape_id)
                bare_work = await history_counts(client, bare_id)
                say(f"  Temporal work per lifecycle (so far): {life_work}")
                say(f"  Temporal work per bare-shape:         {shape_work}")
                say(f"  Temporal work per bare workflow:      {bare_work}")
                if args.profile:
                    # What the Temporal share is made of, event by event, beside the graphs.
                    for name, shown in (("lifecycle", life_id), ("bare-shape", shape_id)):
                        history = await client.get_workflow_handle(shown).fetch_history()
                        (args.profile / f"{name}-history.json").write_text(history.to_json())
                    for name in PROFILED:
                        samples = args.profile / f"{name}.txt"
                        say(f"  {name} profile, on the stack: {profile_summary(samples)}")
                        say(f"  {name} profile, running: {profile_summary(samples, own=True)}")
                    say(f"  flame graphs: {args.profile.resolve()}/*.svg")
                figures["throughput"] = {
                    "lifecycles": n,
                    "concurrency": c,
                    "lifecycles_per_s": life.per_second,
                    "lifecycle_p50_s": life.each.ms(0.5) / 1000,
                    "bare_per_s": bare,
                    "bare_shape_per_s": shape,
                    "ratio": life.per_second / shape,
                    "lifecycle_history": life_work,
                    "bare_shape_history": shape_work,
                    "bare_history": bare_work,
                    "cpu_ms_per_lifecycle": life_cpu.ms_per(n),
                    "cpu_ms_per_bare_shape": shape_cpu.ms_per(n),
                    "idle_cpu_ms_per_s": {name: rate * 1000 for name, rate in idle.items()},
                    "net_cpu_ms_per_lifecycle": life_cpu.net_ms_per(n, idle),
                    "net_cpu_ms_per_bare_shape": shape_cpu.net_ms_per(n, idle),
                }
            if "verify" in only:
                n, c = args.verifies, args.concurrency
                say(
                    f"\n[2] Verify latency: {n} verifies, concurrency {c}, beside the "
                    "bare-shape's Verify update"
                )
                verify_cpu, update_cpu = stack_cpu(stack), stack_cpu(stack)
                verify = await verify_latency(office, n, c, verify_cpu)
                bare_update = await bare_shape_verify_latency(client, n, c, update_cpu)
                say(f"  Verify, right passcode: {verify.right.summary()}")
                say(f"  Verify, wrong passcode: {verify.wrong.summary()}")
                say(f"  bare update:            {bare_update.summary()}")
                say(f"  CPU per right Verify: {verify_cpu.per(n)}")
                say(f"  CPU per bare update:  {update_cpu.per(n)} (its worker is the bench's)")
                say(f"  net of idle, per right Verify: {verify_cpu.per(n, idle)}")
                say(f"  net of idle, per bare update:  {update_cpu.per(n, idle)}")
                figures["verify"] = {
                    "samples": n,
                    "concurrency": c,
                    "right_p50_ms": verify.right.ms(0.5),
                    "right_p99_ms": verify.right.ms(0.99),
                    "wrong_p50_ms": verify.wrong.ms(0.5),
                    "wrong_p99_ms": verify.wrong.ms(0.99),
                    "bare_p50_ms": bare_update.ms(0.5),
                    "bare_p99_ms": bare_update.ms(0.99),
                    "cpu_ms_per_verify": verify_cpu.ms_per(n),
                    "cpu_ms_per_bare_update": update_cpu.ms_per(n),
                }


async def open_run(count: int, database: str, workdir: Path) -> OpenEmails:
    """One size of the open-emails benchmark, on a fresh PostgreSQL database or SQLite."""
    say(f"\n[4] open secure emails: {count} workflows on their timers, {database}")
    async with AsyncExitStack() as databases:
        url = None
        if database == "postgresql":
            url = await databases.enter_async_context(fresh_postgres("bench_open"))
        opened = await open_emails(count, workdir, url)
    say(
        f"  {opened.database} worker RSS: {opened.rss_start_mib:.0f} MiB started, "
        f"{opened.rss_idle_mib:.0f} MiB with all open, peak {opened.rss_peak_mib:.0f} MiB; "
        f"expired {opened.expired}/{opened.count} in {opened.expire_seconds:.1f} s"
    )
    say(
        f"  read model ({opened.database}): {opened.sent_before_expiry} 'sent' before "
        f"the skip, {opened.expired_in_database} 'expired' after; {opened.notices} notices"
    )
    return opened


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    only = set(args.only.split(","))
    figures: dict[str, Any] = {
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": os.getloadavg(),
    }
    say(f"machine: {figures['machine']}; load average {figures['load_before'][0]:.2f}")
    say("(shared machine: other people's tests may run beside this; figures are noisy)")

    compile_bytecode()
    if only & {"uploads", "lifecycles", "verify"}:
        say(f"\n[embedded stack] starting `securemail dev` on free ports, {args.stack_database}")
        async with AsyncExitStack() as database:
            url = None
            if args.stack_database == "postgresql":
                url = await database.enter_async_context(fresh_postgres("bench_stack"))
            await stack_benchmarks(args, only, figures, workdir, url)

    if args.workers > 1 or args.webs > 1:
        n, c = args.lifecycles, args.concurrency
        both = await two_of_each(workdir / "two", args.workers, args.webs, n, c)
        figures["two_of_each"] = vars(both.one) | {"many": vars(both.many), "factor": both.factor}

    if "open" in only:
        figures["open"] = []
        for count in args.open_emails:
            opened = await open_run(count, args.stack_database, workdir / f"open-{count}")
            figures["open"].append(vars(opened))

    if "pages" in only:
        for kind in args.databases.split(","):
            say(f"\n[5] office pages on {kind} with {args.office_rows} secure emails")
            pages = await office_pages(kind, args.office_rows, workdir)
            say(f"  Email Client:            {pages.email_client.summary()}")
            say(f"  Sent box:                {pages.sent_box.summary()}")
            say(f"  portal Inbox (typical):  {pages.inbox.summary()}")
            say(f"  portal Inbox (1,000 msg): {pages.heavy_inbox.summary()}")
            figures[f"pages_{kind}"] = {
                "rows": pages.rows,
                "seed_s": pages.seconds_to_seed,
                "email_client_p95_ms": pages.email_client.ms(0.95),
                "email_client_p50_ms": pages.email_client.ms(0.5),
                "sent_box_p95_ms": pages.sent_box.ms(0.95),
                "sent_box_p50_ms": pages.sent_box.ms(0.5),
                "inbox_p95_ms": pages.inbox.ms(0.95),
                "inbox_p50_ms": pages.inbox.ms(0.5),
                "heavy_inbox_p95_ms": pages.heavy_inbox.ms(0.95),
                "heavy_inbox_p50_ms": pages.heavy_inbox.ms(0.5),
            }
    figures["load_after"] = os.getloadavg()
    return figures


def summary(figures: dict[str, Any]) -> None:
    say("\nSummary (goal in brackets)")
    if "uploads" in figures:
        growth = figures["uploads"]["growth_mib"]
        say(f"  upload RSS growth: {growth:.1f} MiB [< 64]")
    if "verify" in figures:
        v = figures["verify"]
        say(
            f"  Verify p50 {v['right_p50_ms']:.0f} ms vs bare {v['bare_p50_ms']:.0f} ms "
            f"[<= 1.25 x = {1.25 * v['bare_p50_ms']:.0f}]; p99 {v['right_p99_ms']:.0f} ms [< 250]"
        )
    for o in figures.get("open", []):
        say(
            f"  {o['count']} open on {o['database']}: worker RSS {o['rss_peak_mib']:.0f} MiB "
            f"peak [< 250], {o['expired']} expired"
        )
    for key, value in figures.items():
        if key.startswith("pages_"):
            say(
                f"  {key[6:]}: Email Client p95 {value['email_client_p95_ms']:.1f} ms, "
                f"Sent box p95 {value['sent_box_p95_ms']:.1f} ms, "
                f"Inbox p95 {value['inbox_p95_ms']:.1f} ms, "
                f"1,000-message Inbox p95 {value['heavy_inbox_p95_ms']:.1f} ms [< 50]"
            )
    if "throughput" in figures:
        t = figures["throughput"]
        say(f"bare/s (reference, one activity and one update): {t['bare_per_s']:.2f}")
        say(f"bare-shape/s: {t['bare_shape_per_s']:.2f}")
        say(f"lifecycles/s: {t['lifecycles_per_s']:.2f}")
        gross, gross_shape = t["cpu_ms_per_lifecycle"], t["cpu_ms_per_bare_shape"]
        life, shape = t["net_cpu_ms_per_lifecycle"], t["net_cpu_ms_per_bare_shape"]
        say(
            "product-cpu-ms, gross (idle rounds and polls included): "
            f"{sum(gross.get(name, 0.0) for name in PROFILED):.1f}"
        )
        say(f"temporal-cpu-ratio, gross: {gross['temporal'] / gross_shape['temporal']:.2f}")
        say(f"product-cpu-ms: {sum(life.get(name, 0.0) for name in PROFILED):.1f}")
        say(f"temporal-cpu-ratio: {life['temporal'] / shape['temporal']:.2f}")
        if "verify" in figures:
            v = figures["verify"]
            say(f"verify-ratio: {v['right_p50_ms'] / v['bare_p50_ms']:.3f}")
        say(f"ratio: {t['ratio']:.3f}")


def main() -> None:
    args = options()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="securemail-bench-") as workdir:
        figures = asyncio.run(run(args, Path(workdir)))
    figures["seconds"] = time.monotonic() - started
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    say(f"\n(all benchmarks took {figures['seconds']:.0f} s)")
    summary(figures)


if __name__ == "__main__":
    main()
