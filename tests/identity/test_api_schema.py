"""The OpenAPI 3 schema (/api/schema/) validates and names the integrators' contract; the docs
page (/api/docs/) works offline: Swagger UI comes from our own static files."""

from __future__ import annotations

import re

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

PATHS = {
    "/api/v1/employees/": {"post"},
    "/api/v1/employees/{employee_number}/photos/": {"post"},
    "/api/v1/templates/{id}/": {"get"},
    "/api/v1/verify/": {"post"},
    "/api/v1/verify/challenge/": {"post"},
    "/api/v1/attendance/": {"get"},
    "/api/v1/attendance/{event_id}/switch/": {"post"},
    "/api/v1/attempts/": {"get"},
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    """The schema as `manage.py spectacular` writes it, after validating it, warnings as errors."""
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def test_the_schema_validates_and_names_every_endpoint(schema):
    assert schema["openapi"].startswith("3.")
    assert {path: set(operations) for path, operations in schema["paths"].items()} == PATHS


def test_the_verify_request_is_described_as_repeated_image_frames(schema):
    operation = schema["paths"]["/api/v1/verify/"]["post"]
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    request = schema["components"]["schemas"][form["$ref"].rsplit("/", 1)[1]]
    image = request["properties"]["image"]
    assert (image["type"], image["items"], image["minItems"], image["maxItems"]) == (
        "array", {"type": "string", "format": "binary"}, 1, 12  # 1 to 5; 6 to 12 with a liveness challenge
    )
    assert {"employee_number", "direction", "challenge"} <= set(request["properties"])


def test_the_verify_answer_is_described(schema):
    responses = schema["paths"]["/api/v1/verify/"]["post"]["responses"]
    answer = responses["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    properties = schema["components"]["schemas"][answer]["properties"]
    assert {"decision", "reason", "employee", "distance", "threshold", "direction", "event_id", "attempt_id"} <= set(
        properties
    )
    assert {"400", "403", "404", "415", "503"} <= set(responses)


def test_kiosk_tokens_are_listed_only_where_kiosks_are_let_in(schema):
    kiosk_paths = {
        path for path, operations in schema["paths"].items()
        for operation in operations.values() if {"kioskToken": []} in operation["security"]
    }
    assert kiosk_paths == {"/api/v1/verify/", "/api/v1/verify/challenge/", "/api/v1/attendance/{event_id}/switch/"}


@pytest.mark.django_db
def test_the_schema_is_served(client):
    response = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/api/v1/verify/" in response.json()["paths"]


@pytest.mark.django_db
def test_the_docs_page_needs_nothing_from_the_internet(client):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    page = response.content.decode()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page loads something from elsewhere"
    scripts = re.findall(r"""src=["']([^"']+)["']""", page)
    assert any("swagger-ui-bundle.js" in script for script in scripts)
    for script in scripts:
        # Swagger UI's files, and its start-up script from the docs view itself (no inline script: the CSP).
        assert script.startswith(("/static/", reverse("api-docs") + "?"))
        assert client.get(script).status_code == 200, f"{script} is not served"
    assert "<script>" not in page
