"""`tailor run` / `tailor worker`: the platform's processes, started together and stopped cleanly.

`tailor run` is one process tree: this process (dev server's parent, web app), the Temporal dev
server and a `tailor worker` child process with the same settings; Ctrl-C or SIGTERM stops all three.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa
import uvicorn
from temporalio.client import Client, TLSConfig

from engine.compiler import CompiledModel, compile_model
from engine.errors import TailorError
from engine.loader import load
from runtime import drainer, heap, mailbox, releases
from runtime.db import make_engine, upgrade
from runtime.deliveries import sync_report_schedules
from runtime.devserver import DevServer
from runtime.mail import MailSettings
from runtime.plan import IndexBuildFailed, apply, build_indexes, plan
from runtime.recurrence import sync_schedules
from runtime.settings import Settings
from runtime.starter import start_enqueued
from runtime.webhooks import WebhookSettings, announcing
from runtime.worker import make_worker


def prepare(settings: Settings, echo=print) -> tuple[sa.Engine, CompiledModel]:
    """Compile the packs, migrate the platform tables and apply the entity-table plan.

    The plan never drops data; a change it must refuse (values that do not convert) stops the start. On PostgreSQL new
    indexes are built concurrently once the rest has committed (record writes go on); one that fails is said and the
    start goes on without it (queries on its field are slower): the next start builds it again.
    """
    checked = compile_model(load(settings.packs))  # the packs' own problems first, before any database is touched
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        upgrade(conn)
        release, compiled, new = releases.adopt_disk(conn, settings.packs, settings.data_dir / "releases", checked=checked)
        ops = plan(conn, compiled)
        later: list = []
        apply(conn, compiled, ops, later=later)
    if later:
        try:
            build_indexes(engine, later)
        except IndexBuildFailed as exc:
            echo(f"warning: {exc}")
    if new:
        echo(f"configuration release {release['id']} activated (the packs on disk)")
    for op in ops:
        echo(f"migrated: {op.describe()}")
    return engine, compiled


async def connect(settings: Settings, address: str | None = None, patience: float = 30.0) -> Client:
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert or settings.temporal_tls_ca:
        tls = TLSConfig(
            client_cert=Path(settings.temporal_tls_cert).read_bytes() if settings.temporal_tls_cert else None,
            client_private_key=Path(settings.temporal_tls_key).read_bytes() if settings.temporal_tls_key else None,
            server_root_ca_cert=Path(settings.temporal_tls_ca).read_bytes() if settings.temporal_tls_ca else None)
    # A server that has just started answers on its port before its frontend is healthy: keep asking for a while.
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        try:
            return await Client.connect(address or settings.temporal_address, namespace=settings.temporal_namespace, tls=tls)
        except RuntimeError:
            if asyncio.get_running_loop().time() >= deadline:
                raise
            await asyncio.sleep(0.5)


def mail_settings(settings: Settings, base_url: str, echo=print) -> MailSettings:
    """SMTP as configured; in development with no SMTP server listening, .eml files under the data folder."""
    import socket

    if settings.development:
        try:
            socket.create_connection((settings.smtp_host, settings.smtp_port), timeout=1).close()
        except OSError:
            outbox = settings.data_dir / "mail"
            echo(f"no SMTP server at {settings.smtp_host}:{settings.smtp_port}: emails are written to {outbox}")
            return MailSettings(settings.smtp_host, settings.smtp_port, settings.mail_from, base_url, outbox=outbox)
    return MailSettings(settings.smtp_host, settings.smtp_port, settings.mail_from, base_url)


class WorkerFailed(TailorError):
    """The worker process that `tailor run` started stopped on its own."""


def spawn_worker(settings: Settings) -> subprocess.Popen:
    """`tailor worker` in a child process with the very same settings; its output goes where ours goes.

    Its own process (not a thread of this one) because the web app's routes block their event loop on
    database calls, and on a 2-core machine a second process also gets the second core.
    """
    env = {**os.environ, **settings.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "admin.cli", "worker", "--parent-pid", str(os.getpid())], env=env,
                            stdin=subprocess.DEVNULL)


def stop_worker(child: subprocess.Popen, echo=print, patience: float = 60.0) -> int:
    """Ask the worker to stop (SIGTERM: it finishes cleanly) and wait; kill it if it does not within `patience`."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        return child.wait(patience)
    except subprocess.TimeoutExpired:
        echo(f"the worker did not stop within {patience:.0f} s: killing it")
        child.kill()
        return child.wait()


async def _until_exit(child: subprocess.Popen) -> int:
    while child.poll() is None:
        await asyncio.sleep(0.5)
    return child.returncode


GRACE_SECONDS = 5  # how long a stopping web app lets running requests finish


class _Server(uvicorn.Server):
    """uvicorn without signal handlers of its own: `serve_web` stops it, and then the worker and the dev server."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


async def serve_web(app, host: str, port: int, child: subprocess.Popen | None, echo=print) -> None:
    """Serve until Ctrl-C / SIGTERM, or until the worker process stops (then there is nobody to run the processes)."""
    # uvicorn waits for running requests when it stops: those still running after a few seconds are cancelled (an
    # open page's notification stream would otherwise hold the stop up; stop() ends those at once)
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=GRACE_SECONDS))

    def stop() -> None:
        server.should_exit = True
        if (unread := getattr(app.state, "unread_watch", None)) is not None:
            unread.close()  # open pages' notification streams end now rather than hold the stop up

    def exit_on_signal() -> None:
        if server.should_exit:
            server.force_exit = True  # a second Ctrl-C: stop without waiting for open connections
        stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, exit_on_signal)
    heap.settle()  # everything built so far lives as long as the process: full collections need not walk it
    serving = asyncio.create_task(server.serve())
    watch = asyncio.create_task(_until_exit(child) if child else asyncio.Event().wait())
    await asyncio.wait([serving, watch], return_when=asyncio.FIRST_COMPLETED)
    stopped_by_worker = watch.done() and not server.should_exit
    stop()
    await serving
    if stopped_by_worker and watch.result() != 0:
        raise WorkerFailed(f"the worker stopped with exit code {watch.result()}; everything was stopped (see its output above)")
    if stopped_by_worker:
        echo("the worker was stopped: stopping everything")
    watch.cancel()


async def run_worker(client: Client, engine: sa.Engine, compiled: CompiledModel, settings: Settings, base_url: str,
                     hooks: WebhookSettings, echo=print, parent_pid: int | None = None) -> None:
    """Run a worker until Ctrl-C or SIGTERM (or, started by `tailor run`, until that process is gone)."""
    with ThreadPoolExecutor(8) as pool:
        mail = mail_settings(settings, base_url, echo)
        runner = make_worker(client, engine, compiled, settings.task_queue, mail, pool, hooks, cache=settings.workflow_cache)
        heap.settle()
        worker_task = asyncio.create_task(runner.run())
        current = {"compiled": compiled}

        async def switch(new: CompiledModel, _row: dict) -> None:
            """A newly activated release: the activities and the drainer use it from now on; its schedules are synced."""
            for part in runner.tailor_parts:
                part.compiled = new
            current["compiled"] = new
            heap.after_switch()
            await sync_schedules(client, new, settings.task_queue, announce=announcing(settings, new.model))

        with engine.connect() as conn:
            seen = releases.version(conn)
        follow_task = asyncio.create_task(releases.Follower(engine, settings.data_dir / "releases", switch, seen=seen, name="the worker").run())
        # starts the outbox rows a web request could not (it crashed, or Temporal was briefly down)
        drain_task = asyncio.create_task(drainer.run(client, engine, lambda: current["compiled"], settings.task_queue,
                                                     announce=announcing(settings, compiled.model)))
        mail_task = asyncio.create_task(mailbox.run(engine, mail))  # the emails web requests wrote (replies to customers)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        waits = [asyncio.create_task(stop.wait()), worker_task]
        if parent_pid is not None:
            waits.append(asyncio.create_task(_orphaned(parent_pid)))
        echo(f"worker running on task queue '{settings.task_queue}' at {settings.temporal_address}  (Ctrl-C stops it)")
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        echo("stopping...")
        follow_task.cancel()
        for loop_task in (drain_task, mail_task):
            loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task
        await runner.shutdown()
        with contextlib.suppress(asyncio.CancelledError):
            await worker_task
        for w in waits:
            w.cancel()


async def _orphaned(parent_pid: int) -> None:
    """Returns once the process that started this one is gone (killed without a chance to stop us)."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(1)


async def run_platform(settings: Settings, *, embedded: bool, demo: bool, web: bool, host: str, port: int, echo=print,
                       worker: bool = True, parent_pid: int | None = None) -> None:
    """Run (dev server,) worker (and web app) until Ctrl-C or SIGTERM, then stop them all.

    With both the web app and a worker, the worker runs as a child process (`tailor worker`); a worker
    alone (`tailor worker`) runs in this process.
    """
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a service manager, `kill`) stops everything as Ctrl-C does, whenever it comes
        signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))
    engine, compiled = prepare(settings, echo)
    demo_starts: list[str] = []
    if demo:  # every active pack's demo, checked and loaded before anything starts (a broken demo file stops here)
        from admin.demo import load_demo

        loaded = load_demo(engine, compiled)
        demo_starts = loaded.starts
        echo(f"demo data loaded: {', '.join(loaded.packs)}" if loaded.packs else "demo data: loaded before")
    hooks = WebhookSettings.of(settings, compiled.model) if worker else None  # a missing secret stops the start, before anything runs
    dev: DevServer | None = None
    if embedded:
        ip, _, tport = settings.temporal_address.rpartition(":")
        # the UI listens 1000 above the gRPC port: 8233 for the default 7233
        dev = DevServer(settings.data_dir / "temporal", ip=ip or "127.0.0.1", port=int(tport), ui_port=int(tport) + 1000)
        echo(f"starting the Temporal dev server on {dev.address} (UI http://{dev.ip}:{dev.ui_port}), data in {dev.data_dir}")
        dev.launch()  # from this (main) thread: the server dies with this process, even one killed outright
        await asyncio.to_thread(dev.wait_ready)
    child: subprocess.Popen | None = None
    try:
        client = await connect(settings)
        if parent_pid is None:  # `tailor run` has done this before it started us
            schedules = await sync_schedules(client, compiled, settings.task_queue, announce=announcing(settings, compiled.model))
            if schedules:
                echo(f"recurring processes scheduled: {', '.join(schedules)}")
            if deliveries := await sync_report_schedules(client, compiled, settings.task_queue):
                echo(f"reports scheduled for email: {', '.join(deliveries)}")
        if demo_starts:
            await start_enqueued(client, engine, compiled, settings.task_queue, demo_starts, announce=announcing(settings, compiled.model))
            echo("demo processes started")
        base_url = settings.base_url or f"http://{host}:{port}"
        if not web:
            assert hooks is not None
            await run_worker(client, engine, compiled, settings, base_url, hooks, echo, parent_pid)
            return
        if worker:
            child = spawn_worker(replace(settings, base_url=base_url))
        from admin.app import create_app

        app = create_app(engine, compiled, client, secret_key=settings.secret_key, task_queue=settings.task_queue,
                         webhooks=announcing(settings, compiled.model), releases_root=settings.data_dir / "releases",
                         temporal_ui=f"http://{dev.ip}:{dev.ui_port}" if dev else None, secure_cookies=not settings.development)
        echo(f"Tailor is running: {base_url}  (Ctrl-C stops everything)")
        await serve_web(app, host, port, child, echo)
    finally:
        if web:
            echo("stopping...")
        if child is not None:
            await asyncio.to_thread(stop_worker, child, echo)
        if dev:
            await asyncio.to_thread(dev.stop)
        engine.dispose()
        echo("stopped")
