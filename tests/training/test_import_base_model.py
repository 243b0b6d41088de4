"""python manage.py import_base_model: dlib's network into the model store, once."""

import pytest
from django.core.management import call_command

from training.model_store import BASE_THRESHOLD, BASE_VERSION_NAME
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def run(*arguments) -> str:
    from io import StringIO

    output = StringIO()
    call_command("import_base_model", *arguments, stdout=output)
    return output.getvalue()


def test_it_records_the_base_version_as_active_with_its_calibrated_threshold(base_model_version):
    version = ModelVersion.objects.active()
    assert version.name == BASE_VERSION_NAME
    assert version.path.is_file()
    assert version.threshold == pytest.approx(BASE_THRESHOLD)
    assert "FAR 1e-3" in version.threshold_source
    assert version.embedding_size == 128
    assert len(version.sha256) == 64


def test_running_it_again_reuses_what_is_there(base_model_version):
    modified = base_model_version.path.stat().st_mtime_ns
    assert "already imported" in run()
    assert base_model_version.path.stat().st_mtime_ns == modified
    assert ModelVersion.objects.count() == 1


def test_it_imports_again_when_the_saved_file_was_damaged(base_model_version):
    from training.model_store import _sha256

    base_model_version.path.write_bytes(b"half a network")
    assert "Imported" in run()
    base_model_version.refresh_from_db()
    assert _sha256(base_model_version.path) == base_model_version.sha256
    assert base_model_version.path.stat().st_size > 20_000_000
    assert ModelVersion.objects.count() == 1


def test_an_empty_store_says_how_to_import_the_base_model():
    ModelVersion.objects.all().delete()
    with pytest.raises(ModelVersion.DoesNotExist, match="import_base_model"):
        ModelVersion.objects.active()
