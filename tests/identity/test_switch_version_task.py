"""identity.tasks.switch_version: a new network version is switched to only once every ready photo
has an embedding of it, in one step, and rolling back restores the old answers; end to end with a
real worker.

The candidate is a real network: the base one with its embedding layer turned by a fixed rotation
and doubled (every distance doubles, its thresholds with them), so that answers must stay the same
while every stored number changes.
"""

from __future__ import annotations

import numpy
import pytest

from identity import matching, switching, tasks
from identity.models import FaceTemplate, TemplateEmbedding
from tests.identity.real_faces import PATIENT_TIMEOUT_SECONDS, enroll, people_with_two_photos
from tests.versions import scaled_rotated_version
from training import faces, signals
from training.models import ModelVersion, ModelVersionEvent, TrainingRun

SCALE = 2.0
READY = FaceTemplate.Status.READY


def scaled_candidate(base: ModelVersion) -> ModelVersion:
    return scaled_rotated_version(base, SCALE)


def identify_all(version: ModelVersion, probes) -> list[tuple[str | None, float]]:
    answers = []
    for photo in probes:
        image = faces.decode_image(photo.read_bytes())
        found = faces.detect_faces(image, use_cnn_fallback=False)
        embedding = version.embedder().embed(numpy.stack([found[0].chip]))[0]
        match = matching.identify(embedding, version)
        answers.append((match.employee.employee_number if match.employee else None, match.distance))
    return answers


@pytest.fixture
def enrolled(faces_dir, base_model_version):
    # Stored where the workers look too (the test run's FRID_DATA_DIR): they read the chips.
    people = people_with_two_photos(faces_dir, 3)
    for number, (photo, _) in enumerate(people):
        enroll(f"E{number}", photo)
    return [probe for _, probe in people]


@pytest.mark.django_db
def test_a_version_missing_one_embedding_is_not_switched_to(enrolled, base_model_version):
    candidate = scaled_candidate(base_model_version)
    switching.embed_missing(candidate)
    TemplateEmbedding.objects.filter(model_version=candidate).first().delete()
    before = list(FaceTemplate.objects.order_by("pk").values_list("embedding", flat=True))

    with pytest.raises(switching.NotReady, match="1 ready photos have no embedding of scaled-rotated"):
        switching.switch(candidate)

    assert ModelVersion.objects.active() == base_model_version
    after = list(FaceTemplate.objects.order_by("pk").values_list("embedding", flat=True))
    assert all(numpy.array_equal(old, new) for old, new in zip(before, after))


def test_an_accepted_version_is_switched_to_by_the_worker_and_rolled_back(
    enrolled, base_model_version, workers, django_user_model
):
    hr = django_user_model.objects.create_user("hr")
    original = identify_all(base_model_version, enrolled)
    assert [number for number, _ in original] == ["E0", "E1", "E2"]
    candidate = scaled_candidate(base_model_version)
    run = TrainingRun.objects.create(status=TrainingRun.Status.SUCCEEDED, candidate=candidate, created_by=hr)
    workers.start(queues="embeddings,bulk")

    signals.candidate_accepted.send(sender=TrainingRun, version=candidate, run=run)  # as an accepted run does
    workers.wait_for(lambda: ModelVersion.objects.filter(pk=candidate.pk, is_active=True).exists(),
                     PATIENT_TIMEOUT_SECONDS, "the switch to the candidate")

    ready = FaceTemplate.objects.filter(status=READY)
    assert set(ready.values_list("model_version", flat=True)) == {candidate.pk}
    for version in (base_model_version, candidate):  # both versions' embeddings are kept
        assert TemplateEmbedding.objects.filter(model_version=version).count() == ready.count()
    switched = identify_all(candidate, enrolled)
    assert [number for number, _ in switched] == ["E0", "E1", "E2"]
    # Re-embedding reads the stored chip, a JPEG (quality 90): a few thousandths from the chip cut
    # in memory at enrollment (0.0023 here at double scale, against thresholds of about 1).
    assert [distance for _, distance in switched] == pytest.approx([SCALE * d for _, d in original], abs=0.01)
    assert "search now uses scaled-rotated" in TrainingRun.objects.get(pk=run.pk).phase

    tasks.queue_switch(base_model_version, by=hr, action=ModelVersionEvent.Action.ROLLED_BACK)
    workers.wait_for(lambda: ModelVersion.objects.filter(pk=base_model_version.pk, is_active=True).exists(),
                     PATIENT_TIMEOUT_SECONDS, "the roll-back")

    assert identify_all(base_model_version, enrolled) == original  # exactly the old answers
    events = list(ModelVersionEvent.objects.filter(action__in=["activated", "rolled_back"])
                  .order_by("created_at", "pk").values_list("version__name", "action", "by_name"))
    assert events[-2:] == [("scaled-rotated", "activated", "hr"), (base_model_version.name, "rolled_back", "hr")]


def test_an_accepted_run_whose_switch_cannot_be_queued_says_so_and_keeps_the_active_version(
    base_model_version, monkeypatch, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(tasks.switch_version, "apply_async", refuse)
    candidate = scaled_candidate(base_model_version)
    run = TrainingRun.objects.create(status=TrainingRun.Status.SUCCEEDED, candidate=candidate, phase="accepted")
    with django_capture_on_commit_callbacks(execute=True):
        signals.candidate_accepted.send(sender=TrainingRun, version=candidate, run=run)  # raises nothing

    assert TrainingRun.objects.get(pk=run.pk).phase == tasks.SWITCH_NOT_QUEUED
    assert TrainingRun.objects.get(pk=run.pk).status == TrainingRun.Status.SUCCEEDED
    assert ModelVersion.objects.active() == base_model_version
