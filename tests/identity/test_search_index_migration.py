"""Migration identity 0011: the HNSW index built again with ef_construction 200, beside the old
one and under a name of its own, then put in its place (so searches keep an index while it builds)."""

import importlib

import numpy
from django.core.management import call_command
from django.db import connection

from identity.models import Employee, FaceTemplate

MIGRATION = importlib.import_module("identity.migrations.0011_hnsw_ef_construction_200")


def index_definitions() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'identity_facetemplate'")
        return dict(cursor.fetchall())


def hnsw_definition() -> str:
    return index_definitions()[MIGRATION.INDEX]


def nearest_ids(probe, version) -> list[int]:
    return [template.id for template in FaceTemplate.objects.nearest(probe, version)[:5]]


def test_the_index_is_built_as_the_model_defines_it(db):
    (index,) = [index for index in FaceTemplate._meta.indexes if index.name == MIGRATION.INDEX]
    assert (index.m, index.ef_construction) == (16, 200)
    definition = hnsw_definition()
    assert "USING hnsw (embedding vector_l2_ops)" in definition
    assert "m='16'" in definition and "ef_construction='200'" in definition


def test_going_back_and_forth_rebuilds_the_index_and_leaves_nothing_behind(transactional_db, base_model_version):
    employee = Employee.objects.create(employee_number="1", name="Ann")
    rng = numpy.random.default_rng(0)
    FaceTemplate.objects.bulk_create(
        FaceTemplate(employee=employee, source_image="faces/x.jpg", status=FaceTemplate.Status.READY,
                     embedding=list(map(float, row)), model_version=base_model_version)
        for row in rng.normal(size=(50, 128)) * 0.1
    )
    probe = rng.normal(size=128) * 0.1
    before = nearest_ids(probe, base_model_version)

    call_command("migrate", "identity", "0010", verbosity=0)
    assert "ef_construction='64'" in hnsw_definition()
    # What a build stopped half-way leaves behind: running the migration again drops it first.
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE INDEX {MIGRATION.BUILDING} ON identity_facetemplate (id)")

    call_command("migrate", "identity", verbosity=0)

    definitions = index_definitions()
    assert MIGRATION.BUILDING not in definitions
    assert "ef_construction='200'" in definitions[MIGRATION.INDEX]
    assert sum("USING hnsw" in definition for definition in definitions.values()) == 1
    assert FaceTemplate.objects.count() == 50
    assert nearest_ids(probe, base_model_version) == before
