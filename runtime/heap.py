"""The garbage collector's full passes skip what a long-running process builds at its start.

Once its configuration is compiled, a Tailor process holds about 220,000 objects (the model, its JSON Schemas,
SQLAlchemy's tables, the templates, the imported libraries). CPython's full collection walks every one of them
each time enough new objects have survived: in the web app about once per thousand form submissions, 0.1-0.2 s of
CPU each on the bench machine, some 5% of a submission's CPU (docs/benchmarks.md, "Web benchmark"). `settle` moves
what exists at the start into the permanent generation (`gc.freeze`), so full passes walk only what came later.

A release switch replaces the model: `after_switch` unfreezes, so that the old model's reference cycles can be
collected, and settles again a minute later, when the requests that still held the old model are done.
"""
from __future__ import annotations

import asyncio
import gc

SETTLE_AFTER_SWITCH = 60.0  # seconds: longer than any request or activity holds a model

_pending: asyncio.TimerHandle | None = None


def settle() -> None:
    """Collect what is garbage now, then keep every object left out of later collections."""
    gc.collect()
    gc.freeze()


def after_switch() -> None:
    """A new configuration is in use: let the old one be collected, and settle again once it is gone.

    Called on the process's event loop (a release follower's switch)."""
    global _pending
    gc.unfreeze()
    if _pending is not None:
        _pending.cancel()
    _pending = asyncio.get_running_loop().call_later(SETTLE_AFTER_SWITCH, settle)
