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
    the collector is on again if it was on before, and runs when it next would.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
