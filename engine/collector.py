"""Pausing CPython's cycle collector while the engine builds large, long-lived values."""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cycle collector off; reference counting still frees everything else.

    Loading and compiling a 1,000-definition pack makes some 300k objects that all live on. The
    collector, triggered by allocation counts, walks the whole heap again each time enough of them
    have piled up: a few full passes per load, each one ~0.3 s on such a heap, and together they
    find a few hundred cyclic objects to free (measured in bench/compile_bench.py's pack). Afterwards
    what the block made goes straight to the oldest generation (see `_promote`), and the collector is
    on again if it was on before.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            _promote()
            gc.enable()


def _promote() -> None:
    """Move every tracked object to the oldest generation without scanning it (`gc.freeze` then `gc.unfreeze`).

    What the block made is long-lived, and there is a lot of it: re-enabled as it was, the collector would at
    once scan all of it as young objects (~0.03 s per 100k: a load and a compile of the benchmark's 1,000
    definitions make ~90k and ~130k), find next to nothing, and scan it again in the middle generation. In the
    oldest generation it is still scanned, and any cycle in it freed, by every full collection; other code's
    young objects move along with it, so a cycle of theirs waits for the next full collection too.
    """
    if gc.get_freeze_count():
        return  # someone froze objects on purpose (say, before forking workers): unfreezing would undo that
    gc.freeze()
    gc.unfreeze()
