"""The HNSW index and FRID's filters: templates the filters drop (another model version, inactive
employees, held for a duplicate review) never hide the nearest searchable one.

PostgreSQL applies the WHERE clause to what the HNSW index scan returns, and a plain HNSW scan
returns at most hnsw.ef_search (FRID: 100) rows: when more than that many dropped templates lie nearer the
probe than the searchable one, the old query found nobody at all. FRID's search runs with pgvector's
iterative index scan (identity.matching.index_search), which goes on through the graph until the
query has its rows.
"""

import numpy
import pytest
from django.db import connection

from identity import matching
from identity.matching import best_match, identify, verify_claim
from identity.models import Employee, FaceTemplate, search_settings
from training.models import ModelVersion

READY = FaceTemplate.Status.READY
DECOYS = 1500  # well above ef_search (100) and NEAREST_TEMPLATES (20)
PROBE_AXIS = 0
# The searchable template is 0.30 from the probe; nearly every decoy is nearer.
WANTED_DISTANCE = 0.30
DECOY_SCALE = 0.08


def vector(axis: int, scale: float = 1.0) -> numpy.ndarray:
    out = numpy.zeros(128)
    out[axis] = scale
    return out


PROBE = vector(PROBE_AXIS)


def decoy_embeddings(count: int, seed: int = 3) -> list[list[float]]:
    """``count`` points along the way from the probe to the searchable template (a bridge of faces,
    as a large gallery has everywhere: the graph reaches every template), each DECOY_SCALE off it in
    a random direction; nearly all of them nearer the probe than the searchable template."""
    rng = numpy.random.default_rng(seed)
    noise = rng.normal(size=(count, 128))
    noise *= DECOY_SCALE / numpy.linalg.norm(noise, axis=1, keepdims=True)
    along = rng.uniform(0, 1, size=(count, 1)) * WANTED_DISTANCE * vector(1)
    return [list(map(float, PROBE + row)) for row in along + noise]


def nearer_than_wanted(embeddings) -> int:
    return sum(numpy.linalg.norm(numpy.array(row) - PROBE) < WANTED_DISTANCE for row in embeddings)


def templates(employees: list[Employee], version: ModelVersion, embeddings, **fields) -> None:
    FaceTemplate.objects.bulk_create(
        FaceTemplate(employee=employees[index % len(employees)], source_image="faces/x.jpg", status=READY,
                     embedding=embedding, model_version=version, **fields)
        for index, embedding in enumerate(embeddings)
    )


@pytest.fixture
def other_version(base_model_version) -> ModelVersion:
    return ModelVersion.objects.create(name="retrained", file="retrained.keras", sha256="0" * 64, threshold=0.5)


@pytest.fixture
def ann(base_model_version) -> Employee:
    """The one searchable employee, WANTED_DISTANCE from the probe."""
    employee = Employee.objects.create(employee_number="1", name="Ann")
    templates([employee], base_model_version, [list(map(float, PROBE + vector(1, WANTED_DISTANCE)))])
    return employee


@pytest.fixture(autouse=True)
def index_scans(db):
    """Make PostgreSQL search through the HNSW index, as it does with a large gallery (with a few
    hundred rows it would rather sort the rows of one version). SET LOCAL ends with the test's
    transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")


def assert_the_index_is_used(version: ModelVersion) -> None:
    """The plan of FRID's query is an HNSW index scan (otherwise the test would prove nothing about
    the index)."""
    plan = FaceTemplate.objects.searchable(version).nearest(PROBE, version)[:matching.NEAREST_TEMPLATES].explain()
    assert "facetemplate_embedding_hnsw" in plan, plan


def assert_ann_is_found(ann: Employee, version: ModelVersion) -> None:
    assert_the_index_is_used(version)
    match = best_match(PROBE, version)
    assert match.nearest == ann
    assert match.distance == pytest.approx(WANTED_DISTANCE, abs=1e-6)
    assert match.gallery_size == 1
    assert identify(PROBE, version).nearest == ann


def test_the_decoys_outnumber_what_a_plain_index_scan_returns():
    assert nearer_than_wanted(decoy_embeddings(DECOYS)) > 10 * search_settings()["ef_search"]


def test_templates_of_inactive_employees_nearer_the_probe_do_not_hide_the_nearest_active_one(
    base_model_version, ann
):
    gone = [Employee.objects.create(employee_number=f"gone-{i}", name=f"Gone {i}", is_active=False) for i in range(30)]
    templates(gone, base_model_version, decoy_embeddings(DECOYS))

    assert_ann_is_found(ann, base_model_version)


def test_templates_of_another_model_version_nearer_the_probe_do_not_hide_the_nearest_searchable_one(
    base_model_version, other_version, ann
):
    others = [Employee.objects.create(employee_number=f"other-{i}", name=f"Other {i}") for i in range(30)]
    templates(others, other_version, decoy_embeddings(DECOYS))

    assert_ann_is_found(ann, base_model_version)


def test_templates_held_for_a_duplicate_review_nearer_the_probe_do_not_hide_the_nearest_searchable_one(
    base_model_version, ann
):
    held = [Employee.objects.create(employee_number=f"held-{i}", name=f"Held {i}") for i in range(30)]
    templates(held, base_model_version, decoy_embeddings(DECOYS), possible_duplicate_of=ann)

    assert_ann_is_found(ann, base_model_version)


def test_deleted_templates_still_in_the_index_do_not_hide_the_nearest_searchable_one(base_model_version, ann):
    """A deleted template stays in the HNSW index until VACUUM; the scan returns it and PostgreSQL
    drops it as invisible, as it drops filtered ones."""
    others = [Employee.objects.create(employee_number=f"other-{i}", name=f"Other {i}") for i in range(30)]
    templates(others, base_model_version, decoy_embeddings(DECOYS))
    FaceTemplate.objects.exclude(employee=ann).delete()

    assert_ann_is_found(ann, base_model_version)
    assert [template.employee for template in FaceTemplate.objects.nearest(PROBE, base_model_version)[:5]] == [ann]


def test_the_second_nearest_employee_is_found_past_many_dropped_templates(base_model_version, ann):
    """The margin rule needs the second-nearest searchable employee too."""
    gone = [Employee.objects.create(employee_number=f"gone-{i}", name=f"Gone {i}", is_active=False) for i in range(30)]
    templates(gone, base_model_version, decoy_embeddings(DECOYS))
    bob = Employee.objects.create(employee_number="2", name="Bob")
    templates([bob], base_model_version, [list(map(float, PROBE + vector(2, 0.45)))])

    match = best_match(PROBE, base_model_version, margin=0.08)

    assert (match.nearest, match.gallery_size) == (ann, 2)
    assert match.second_distance == pytest.approx(0.45, abs=1e-6)


def test_a_claim_finds_the_claimed_employees_own_template_behind_many_nearer_employees(base_model_version, ann):
    """1:1: the claimed employee's own template is found however many other employees are nearer
    (who are then 'someone else nearer', and the claim is refused)."""
    others = [Employee.objects.create(employee_number=f"other-{i}", name=f"Other {i}") for i in range(30)]
    templates(others, base_model_version, decoy_embeddings(DECOYS))

    match = verify_claim(PROBE, ann, base_model_version)

    assert match.distance == pytest.approx(WANTED_DISTANCE, abs=1e-6)
    assert match.employee is None and match.nearest in others
    assert match.second_distance < WANTED_DISTANCE


def test_the_search_settings_apply_to_the_search_only(base_model_version, ann, settings):
    settings.FRID_HNSW_EF_SEARCH = 77
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = 41")
        with matching.index_search():
            cursor.execute("SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')")
            assert cursor.fetchone() == ("77", "strict_order")
        cursor.execute("SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')")
        assert cursor.fetchone() == ("41", "off")




def test_a_large_gallery_is_counted_by_estimate_and_a_small_one_exactly(base_model_version, ann, monkeypatch):
    others = [Employee.objects.create(employee_number=f"other-{i}", name=f"Other {i}") for i in range(30)]
    templates(others, base_model_version, decoy_embeddings(DECOYS))
    searchable = FaceTemplate.objects.searchable(base_model_version)
    assert matching.gallery_size(searchable) == DECOYS + 1

    monkeypatch.setattr(matching, "EXACT_GALLERY_COUNT", 100)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE identity_facetemplate")
        cursor.execute("ANALYZE identity_employee")
    estimated = matching.gallery_size(searchable)
    assert 101 <= estimated <= 3 * (DECOYS + 1)  # the planner's estimate, never below what was counted
    assert best_match(PROBE, base_model_version).gallery_size == estimated
