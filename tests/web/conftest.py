"""Databases for web tests that must hold on SQLite and on PostgreSQL (made as tests/runtime/conftest.py makes them)."""
from __future__ import annotations

import pytest

from tests.runtime.conftest import DIALECTS, empty_database


@pytest.fixture(scope="module", params=DIALECTS)
def module_database(request, tmp_path_factory):
    """An empty database shared by a module's tests: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    with empty_database(request.param, tmp_path_factory.mktemp("web")) as engine:
        yield engine
