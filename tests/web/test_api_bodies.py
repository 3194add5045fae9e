"""Every request body of the API is in its OpenAPI, described: what to send is readable from /api/openapi.json alone."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from tests.conftest import CRM


def test_every_operation_that_takes_a_body_documents_it():
    app = create_app(sa.create_engine("sqlite://"), compile_model(load([CRM])), None, secret_key="bodies")
    spec = TestClient(app).get("/api/openapi.json").json()
    schemas = spec["components"]["schemas"]

    def resolved(schema: dict) -> dict:
        return schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema

    seen = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in ("post", "put", "patch"):
                continue
            seen.append(f"{method.upper()} {path}")
            body = resolved(operation["requestBody"]["content"]["application/json"]["schema"])
            assert body["type"] == "object" and body.get("description"), (method, path)
            for name, prop in body.get("properties", {}).items():
                assert prop.get("description"), (method, path, name)
            assert operation["requestBody"]["content"]["application/json"].get("examples") or body.get("examples"), (method, path)
    assert sorted(seen) == ["PATCH /api/records/{entity}/{record_id}", "POST /api/forms/{name}/submissions",
                            "POST /api/projects/{project_id}/members", "POST /api/records/{entity}",
                            "POST /api/tasks/{task_id}/approve", "POST /api/tasks/{task_id}/complete", "POST /api/tasks/{task_id}/reassign"]
    complete = schemas["CompleteBody"]
    assert set(complete["properties"]) == {"data", "comment"} and complete["examples"][0]["data"]
