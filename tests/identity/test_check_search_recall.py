"""manage.py check_search_recall: the HNSW index against exact search on the live data."""

import json
from io import StringIO

import numpy
import pytest
from django.core.management import call_command
from django.db import connection

from identity.models import Employee, FaceTemplate

READY = FaceTemplate.Status.READY


def run(*arguments: str) -> str:
    out = StringIO()
    call_command("check_search_recall", *arguments, stdout=out)
    return out.getvalue()


@pytest.fixture
def gallery(base_model_version):
    """300 active employees, one template each, spread as faces are (unit vectors in 128 dimensions),
    and 100 templates of inactive employees that are never searched."""
    rng = numpy.random.default_rng(5)
    rows = rng.normal(size=(400, 128))
    rows /= numpy.linalg.norm(rows, axis=1, keepdims=True)
    active = [Employee(employee_number=str(i), name=f"Person {i}", is_active=i < 300) for i in range(400)]
    Employee.objects.bulk_create(active)
    FaceTemplate.objects.bulk_create(
        FaceTemplate(employee=employee, source_image="faces/x.jpg", status=READY,
                     embedding=list(map(float, row)), model_version=base_model_version)
        for employee, row in zip(Employee.objects.order_by("id"), rows)
    )
    with connection.cursor() as cursor:
        # The index as with a large gallery (with 300 rows PostgreSQL would rather sort them all);
        # the command's exact search turns index scans off whatever these say.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")


def test_recall_against_exact_search_on_the_live_data(gallery, base_model_version, settings):
    settings.FRID_HNSW_EF_SEARCH = 64

    result = json.loads(run("--sample", "25", "--json").strip().splitlines()[-1])

    assert (result["sample"], result["searchable_templates"], result["version"]) == (25, 300, "dlib-resnet-v1")
    assert result["ef_search"] == 64 and result["iterative_scan"] == "strict_order"
    assert result["recall_at_1"] >= 0.96  # HNSW is approximate; on 300 templates it should not miss
    assert 0.9 <= result["recall_at_10"] <= 1.0
    plan = FaceTemplate.objects.nearest(numpy.zeros(128), base_model_version)[:10].explain()
    assert "facetemplate_embedding_hnsw" in plan  # what was measured was the index


def test_the_words(gallery, settings):
    settings.FRID_HNSW_EF_SEARCH = 40
    out = run("--sample", "5")

    assert "5 of 300 searchable templates of dlib-resnet-v1" in out
    assert "recall@1  " in out and "recall@10 " in out and "hnsw.ef_search 40" in out


def test_a_clear_message_when_nobody_is_enrolled(base_model_version):
    assert "Nobody is enrolled under the active model version dlib-resnet-v1" in run()
    assert json.loads(run("--json"))["sample"] == 0
