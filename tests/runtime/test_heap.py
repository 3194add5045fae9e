"""The startup heap is kept out of full collections, and a replaced configuration can still be collected."""
from __future__ import annotations

import asyncio
import gc
import weakref

from runtime import heap


class Model:
    """Stands in for a compiled configuration: objects that refer to each other, as a real model's do."""

    def __init__(self) -> None:
        self.me = self


def test_a_model_replaced_by_a_release_switch_is_collected_and_the_heap_settles_again(monkeypatch):
    monkeypatch.setattr(heap, "SETTLE_AFTER_SWITCH", 0.05)
    try:
        old = Model()
        gone = weakref.ref(old)
        heap.settle()
        assert gc.get_freeze_count() > 0
        del old
        gc.collect()
        assert gone() is not None  # frozen: full collections do not walk it (that is the point) ...

        async def switch_then_wait() -> int:
            heap.after_switch()  # ... until a switch lets go of the old model
            gc.collect()
            assert gone() is None
            assert gc.get_freeze_count() == 0
            await asyncio.sleep(0.2)
            return gc.get_freeze_count()

        assert asyncio.run(switch_then_wait()) > 0  # settled again once the old model was gone
    finally:
        gc.unfreeze()  # the rest of the test run collects as usual
