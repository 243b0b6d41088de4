"""Face search in pgvector: who may be matched, and how well 100 enrolled LFW people are found."""

import logging
import shutil
from pathlib import Path

import numpy
import pytest
from django.db import connection

from identity import bulk_import, matching
from identity.matching import best_match
from identity.models import Employee, FaceTemplate
from training import faces
from training.engine import FaceEngine
from training.models import ModelVersion

logger = logging.getLogger(__name__)

READY = FaceTemplate.Status.READY


def unit_vector(axis: int, scale: float = 1.0) -> list[float]:
    vector = [0.0] * 128
    vector[axis] = scale
    return vector


def ready_template(employee: Employee, version: ModelVersion, embedding: list[float]) -> FaceTemplate:
    return FaceTemplate.objects.create(
        employee=employee, source_image="faces/x.jpg", status=READY, embedding=embedding, model_version=version
    )


@pytest.fixture
def other_version(base_model_version) -> ModelVersion:
    return ModelVersion.objects.create(name="retrained", file="retrained.keras", sha256="0" * 64, threshold=0.5)


def test_searchable_keeps_only_ready_templates_of_active_employees_under_the_version(
    base_model_version, other_version
):
    ann = Employee.objects.create(employee_number="1", name="Ann")
    gone = Employee.objects.create(employee_number="2", name="Bob", is_active=False)
    wanted = ready_template(ann, base_model_version, unit_vector(0))
    ready_template(gone, base_model_version, unit_vector(1))  # inactive employee
    ready_template(ann, other_version, unit_vector(2))  # another model version
    FaceTemplate.objects.create(employee=ann, source_image="faces/p.jpg")  # pending
    FaceTemplate.objects.create(employee=ann, source_image="faces/r.jpg", status=FaceTemplate.Status.REJECTED,
                                reason="No face was found in this photo.")

    assert list(FaceTemplate.objects.searchable(base_model_version)) == [wanted]


def test_nearest_orders_by_euclidean_distance_and_best_match_applies_the_threshold(base_model_version):
    ann = Employee.objects.create(employee_number="1", name="Ann")
    bob = Employee.objects.create(employee_number="2", name="Bob")
    ready_template(ann, base_model_version, unit_vector(0))
    ready_template(bob, base_model_version, unit_vector(1))
    query = numpy.array(unit_vector(0, 0.8)) + numpy.array(unit_vector(1, 0.3))

    ranked = [(template.employee.name, round(template.distance, 6))
              for template in FaceTemplate.objects.nearest(query, base_model_version)]

    # Hand-computed: |(0.8, 0.3) - (1, 0)| = sqrt(0.04 + 0.09); |(0.8, 0.3) - (0, 1)| = sqrt(0.64 + 0.49).
    assert ranked == [("Ann", round(0.13 ** 0.5, 6)), ("Bob", round(1.13 ** 0.5, 6))]
    threshold = base_model_version.threshold
    assert 0.13 ** 0.5 <= threshold < 1.13 ** 0.5  # so the decision below is Ann, not unknown
    match = best_match(query, base_model_version)
    assert (match.employee, match.nearest, round(match.distance, 6)) == (ann, ann, round(0.13 ** 0.5, 6))
    # sqrt(1.81) from Ann, sqrt(2.01) from Bob (no tie for the index to break either way): too far
    # from both, an unknown person whose nearest is still Ann.
    far = best_match(numpy.array(unit_vector(2)) + numpy.array(unit_vector(0, 0.1)), base_model_version)
    assert (far.employee, far.nearest) == (None, ann)


def test_best_match_finds_nobody_when_no_one_is_enrolled(base_model_version, other_version):
    ann = Employee.objects.create(employee_number="1", name="Ann")
    ready_template(ann, other_version, unit_vector(0))  # only under another version

    match = best_match(numpy.array(unit_vector(0)), base_model_version)

    assert (match.employee, match.nearest, match.distance) == (None, None, None)


def enroll_many(count: int, version: ModelVersion) -> None:
    employees = Employee.objects.bulk_create(
        Employee(employee_number=f"g{number}", name=f"Person {number}") for number in range(count))
    FaceTemplate.objects.bulk_create(
        FaceTemplate(employee=employee, source_image="faces/x.jpg", status=READY, model_version=version,
                     embedding=unit_vector(number % 128, 1 + number / count))
        for number, employee in enumerate(employees))


def test_a_small_gallery_is_counted_exactly(base_model_version, monkeypatch):
    monkeypatch.setattr(matching, "EXACT_GALLERY_COUNT", 50)
    enroll_many(30, base_model_version)

    assert matching.gallery_size(FaceTemplate.objects.searchable(base_model_version)) == 30


def test_a_gallery_far_above_the_exact_limit_is_sized_by_the_planners_estimate_without_counting(
        base_model_version, monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(matching, "EXACT_GALLERY_COUNT", 10)
    enroll_many(300, base_model_version)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE identity_facetemplate")
        cursor.execute("ANALYZE identity_employee")

    with django_assert_num_queries(1):  # the EXPLAIN alone
        size = matching.gallery_size(FaceTemplate.objects.searchable(base_model_version))

    assert 150 <= size <= 600


def test_when_the_search_finds_nobody_the_gallery_is_counted_whatever_the_statistics_say(
        base_model_version, monkeypatch):
    monkeypatch.setattr(matching, "EXACT_GALLERY_COUNT", 10)
    enroll_many(300, base_model_version)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE identity_facetemplate")
    FaceTemplate.objects.update(status=FaceTemplate.Status.PENDING)  # statistics still say 300 ready

    match = best_match(numpy.array(unit_vector(0)), base_model_version)

    assert (match.nearest, match.gallery_size) == (None, 0)


# --- 100 real people ------------------------------------------------------------------------------

ENROLLED_PEOPLE = 100
STRANGERS = 20


def lfw_people(faces_dir: Path) -> tuple[list[Path], list[Path]]:
    """A fixed spread of LFW: 100 people with 3 or more photos (one to enroll, a spare if HR has to
    retake it, one to search with) and 20 people with a single photo, who are never enrolled."""
    people = sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir())
    counts = {person: len(list(person.glob("*.jpg"))) for person in people}
    several = [person for person in people if counts[person] >= 3]
    single = [person for person in people if counts[person] == 1]
    enrolled = several[:: len(several) // ENROLLED_PEOPLE][:ENROLLED_PEOPLE]
    return enrolled, single[:: len(single) // STRANGERS][:STRANGERS]


def enroll_first_acceptable_photos(people: list[Path], user, folder: Path) -> dict[str, Path]:
    """Enroll each person from their first photo through bulk_import; where it is rejected, their
    next photo, as HR would. Returns each employee number's enrolled photo."""
    photo_index = {person.name: 0 for person in people}
    enrolled: dict[str, Path] = {}
    waiting = list(people)
    for attempt in range(3):
        round_folder = folder / f"round-{attempt}"
        for person in waiting:
            photo = sorted(person.glob("*.jpg"))[photo_index[person.name]]
            (round_folder / person.name).mkdir(parents=True)
            shutil.copyfile(photo, round_folder / person.name / photo.name)
        summary = bulk_import.import_folder(round_folder, user)
        logger.info("enrollment round %d: %s", attempt, summary.report())
        ready = set(FaceTemplate.objects.filter(status=READY).values_list("employee__employee_number", flat=True))
        for person in waiting:
            if person.name in ready:
                enrolled[person.name] = sorted(person.glob("*.jpg"))[photo_index[person.name]]
            else:
                photo_index[person.name] += 1
        waiting = [person for person in waiting if person.name not in enrolled]
        if not waiting:
            break
    return enrolled


def central_embedding(engine: FaceEngine, path: Path) -> numpy.ndarray | None:
    image = faces.load_image(path)
    face = faces.central_face(faces.detect_faces(image), image.shape)
    return None if face is None else engine.embed_faces([face])[0].embedding


@pytest.mark.slow
def test_a_hundred_enrolled_lfw_people_are_found_and_strangers_are_unknown(
    faces_dir, base_model_version, django_user_model, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    people, strangers = lfw_people(faces_dir)
    user = django_user_model.objects.create_user("hr", password="not-used")
    enrolled = enroll_first_acceptable_photos(people, user, tmp_path / "photos")
    assert len(enrolled) == ENROLLED_PEOPLE
    engine = FaceEngine(base_model_version.embedder())
    with connection.cursor() as cursor:
        # Make PostgreSQL search through the HNSW index, as it does with many templates (with 100
        # rows it would rather sort them all). SET LOCAL ends with the test's transaction.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
    plan = FaceTemplate.objects.nearest(unit_vector(0), base_model_version)[:1].explain()
    assert "Index Scan using facetemplate_embedding_hnsw" in plan
    searchable = FaceTemplate.objects.searchable(base_model_version)
    stored = list(searchable.values_list("employee__employee_number", "embedding"))
    numbers = [number for number, _ in stored]
    matrix = numpy.array([embedding for _, embedding in stored])

    nearest_right = accepted_right = same_as_exact = 0
    for number, enrolled_photo in enrolled.items():
        photos = sorted(enrolled_photo.parent.glob("*.jpg"))
        query = photos[photos.index(enrolled_photo) + 1] if enrolled_photo != photos[-1] else photos[0]
        embedding = central_embedding(engine, query)
        if embedding is None:
            continue  # no face found in the query photo: counts as not found
        match = best_match(embedding, base_model_version)
        exact = numbers[int(numpy.argmin(numpy.linalg.norm(matrix - embedding, axis=1)))]
        same_as_exact += match.nearest is not None and match.nearest.employee_number == exact
        nearest_right += match.nearest is not None and match.nearest.employee_number == number
        accepted_right += match.employee is not None and match.employee.employee_number == number
    unknown = 0
    for stranger in strangers:
        embedding = central_embedding(engine, sorted(stranger.glob("*.jpg"))[0])
        unknown += embedding is None or best_match(embedding, base_model_version).employee is None

    logger.warning(
        "pgvector HNSW search, %d enrolled LFW people: nearest is right for %d (the exact nearest for %d), "
        "accepted and right for %d; %d of %d strangers unknown (threshold %.3f)",
        ENROLLED_PEOPLE, nearest_right, same_as_exact, accepted_right, unknown, STRANGERS,
        base_model_version.threshold,
    )
    assert same_as_exact >= 99  # HNSW is approximate; on 100 templates it should not miss
    assert nearest_right >= 97
    assert unknown >= 18
