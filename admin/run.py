"""`tailor run` / `tailor worker`: the platform's processes, started together and stopped cleanly."""
from __future__ import annotations

import asyncio
import contextlib
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
import uvicorn
from temporalio.client import Client, TLSConfig

from engine.compiler import CompiledModel, compile_model
from engine.loader import load
from runtime import drainer
from runtime.mail import MailSettings
from runtime.db import make_engine, upgrade
from runtime.devserver import DevServer
from runtime.plan import apply, plan
from runtime.recurrence import sync_schedules
from runtime.settings import Settings
from runtime.starter import start_enqueued
from runtime.webhooks import WebhookSettings
from runtime.worker import make_worker


def prepare(settings: Settings, echo=print) -> tuple[sa.Engine, CompiledModel]:
    """Compile the packs, migrate the platform tables and apply the entity-table plan.

    The plan never drops data; a change it must refuse (values that do not convert) stops the start.
    """
    compiled = compile_model(load(settings.packs))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        upgrade(conn)
        ops = plan(conn, compiled)
        apply(conn, compiled, ops)
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


async def run_platform(settings: Settings, *, embedded: bool, demo: bool, web: bool, host: str, port: int, echo=print,
                       worker: bool = True) -> None:
    """Run (dev server,) worker (and web app) until Ctrl-C or SIGTERM, then stop them all."""
    engine, compiled = prepare(settings, echo)
    dev: DevServer | None = None
    address = settings.temporal_address
    if embedded:
        ip, _, tport = settings.temporal_address.rpartition(":")
        # the UI listens 1000 above the gRPC port: 8233 for the default 7233
        dev = DevServer(settings.data_dir / "temporal", ip=ip or "127.0.0.1", port=int(tport), ui_port=int(tport) + 1000)
        echo(f"starting the Temporal dev server on {dev.address} (UI http://{dev.ip}:{dev.ui_port}), data in {dev.data_dir}")
        await asyncio.to_thread(dev.start)
    try:
        client = await connect(settings, address)
        schedules = await sync_schedules(client, compiled, settings.task_queue, announce=bool(settings.webhook_urls))
        if schedules:
            echo(f"recurring processes scheduled: {', '.join(schedules)}")
        if demo:
            from admin.demo import load_demo

            await start_enqueued(client, engine, compiled, settings.task_queue, load_demo(engine, compiled),
                                 announce=bool(settings.webhook_urls))
            echo("demo data loaded; demo processes started")
        base_url = f"http://{host}:{port}"
        with ThreadPoolExecutor(8) as pool:
            hooks = WebhookSettings(settings.webhook_urls, settings.webhook_secret)
            runner = make_worker(client, engine, compiled, settings.task_queue, mail_settings(settings, base_url, echo), pool, hooks) if worker else None
            worker_task = asyncio.create_task(runner.run()) if runner else asyncio.create_task(asyncio.Event().wait())
            # starts the outbox rows a web request could not (crashed, Temporal was briefly down)
            drain_task = asyncio.create_task(drainer.run(client, engine, compiled, settings.task_queue,
                                                         announce=bool(settings.webhook_urls))) if runner else None
            stop = asyncio.Event()
            if web:
                from admin.web import create_app

                app = create_app(engine, compiled, client, secret_key=settings.secret_key, task_queue=settings.task_queue,
                                 webhooks=bool(settings.webhook_urls),
                                 temporal_ui=f"http://{dev.ip}:{dev.ui_port}" if dev else None, secure_cookies=not settings.development)
                server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
                echo(f"Tailor is running: {base_url}  (Ctrl-C stops everything)")
                await server.serve()  # returns on Ctrl-C / SIGTERM
            else:
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                echo(f"worker running on task queue '{settings.task_queue}' at {address}  (Ctrl-C stops it)")
                await asyncio.wait([asyncio.create_task(stop.wait()), worker_task], return_when=asyncio.FIRST_COMPLETED)
            echo("stopping...")
            if drain_task:
                drain_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drain_task
            if runner:
                await runner.shutdown()
            else:
                worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker_task
    finally:
        if dev:
            await asyncio.to_thread(dev.stop)
        engine.dispose()
        echo("stopped")
