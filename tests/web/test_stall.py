"""One slow request must not hold up the others (issue: a mail merge on the event loop stalled /health for seconds).

No timing thresholds: the test checks the order of answers. A quick request sent while a heavy merge is being
produced is answered while that merge is still in flight; a server doing the merge on its event loop could
only answer it afterwards.
"""
from __future__ import annotations

import asyncio
import re

import httpx

from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from tests.conftest import CRM
from tests.web.look import start_site

LETTER = "{% for c in record.name * 300 %}{{ c|upper }}{% endfor %}"  # some thousands of loop turns a letter


def test_a_heavy_mail_merge_does_not_hold_up_other_requests(tmp_path):
    site, server, thread = start_site(tmp_path)
    compiled = compile_model(load([CRM]))
    with site.engine.begin() as conn:
        for i in range(300):
            records.create_record(conn, compiled, "company", {"name": f"Letter Co {i:03d}", "status": "customer"}, None)

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=site.base, timeout=120) as http:
            token = re.search(r'name="csrf_token" value="([^"]+)"', (await http.get("/login")).text).group(1)
            await http.post("/login", data={"csrf_token": token, "username": "mia", "password": "mia"})
            token = re.search(r'name="csrf_token" value="([^"]+)"', (await http.get("/directory/company")).text).group(1)
            merge = asyncio.create_task(http.post("/directory/company/merge", data={"csrf_token": token, "template": LETTER}))
            await asyncio.sleep(0.3)
            assert not merge.done(), "the merge must still be in flight for this test to mean anything"
            quick = await http.get("/health")
            assert quick.status_code == 200
            assert not merge.done(), "the quick request waited for the merge"
            letters = await merge
            assert letters.status_code == 200 and letters.text.count('class="card letter"') == 303

    try:
        asyncio.run(scenario())
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        server.config.app.state.services.merges.close()
