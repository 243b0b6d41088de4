"""Test harness: its own data directory, Django set up on it, and shared fixtures."""

import os
import re
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Before the settings load: tests get their own embedded servers and files, never the user's var/.
# Subprocesses that tests start inherit both variables.
os.environ.setdefault("FRID_DATA_DIR", str(PROJECT_ROOT / "var" / "test"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "frid_site.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from frid_site import services  # noqa: E402

if settings.FRID_DATA_DIR != Path(os.environ["FRID_DATA_DIR"]):
    # Only when something loaded the settings before this file (DJANGO_SETTINGS_MODULE in pytest.ini).
    pytest.exit(
        f"The Django settings were loaded before tests/conftest.py could point them at "
        f"{os.environ['FRID_DATA_DIR']}: unset DJANGO_SETTINGS_MODULE, or set FRID_DATA_DIR too.",
        returncode=4,
    )


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Give this run a test database of its own: engineers share the tree and its embedded server,
    and pytest-django drops a test database of the same name that another run is still using.

    The embedded servers are left running after the tests, for the same reason.
    """
    if not os.environ.get("DATABASE_URL", "").strip():
        drop_test_databases_of_finished_runs()
    for database in settings.DATABASES.values():
        test = database.setdefault("TEST", {})
        test["NAME"] = f"{test.get('NAME') or 'test_' + database['NAME']}_{os.getpid()}"


def drop_test_databases_of_finished_runs() -> None:
    """Drop test_frid_<pid> databases left on the embedded server by runs that were killed."""
    import psutil
    import psycopg

    default = settings.DATABASES["default"]
    pattern = re.compile(rf"test_{re.escape(default['NAME'])}_(\d+)")
    server = {"host": default["HOST"], "port": default["PORT"], "user": default["USER"], "dbname": "postgres"}
    with psycopg.connect(**server, autocommit=True) as connection:
        for (name,) in connection.execute("SELECT datname FROM pg_database").fetchall():
            match = pattern.fullmatch(name)
            if match and not psutil.pid_exists(int(match.group(1))):
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """The real face photos (LFW, its pair lists, AT&T), from settings.FRID_FACES_DIR."""
    path: Path = settings.FRID_FACES_DIR
    missing = [name for name in ("lfw", "lfw-protocol", "att") if not (path / name).is_dir()]
    if missing:
        pytest.fail(
            f"The face photos are missing: {path} has no {', '.join(missing)}. "
            "Set FRID_FACES_DIR to the folder that holds lfw/, lfw-protocol/ and att/.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def celery_broker() -> str:
    """The Celery broker URL, with the embedded Redis started when CELERY_BROKER_URL names no server.

    The embedded one is left running afterwards, like the embedded PostgreSQL.
    """
    if not os.environ.get("CELERY_BROKER_URL", "").strip():
        services.start_redis(settings.FRID_DATA_DIR)
    return settings.CELERY_BROKER_URL


@pytest.fixture(scope="session")
def _imported_base_model(django_db_setup, django_db_blocker):
    """Import the base network once per run into the test database and the test model store."""
    from training.model_store import import_base_version

    with django_db_blocker.unblock():
        version, _ = import_base_version()
    return version


@pytest.fixture
def base_model_version(_imported_base_model, db):
    """The active base version. Tests on transactional_db empty the tables afterwards; the
    saved network stays in the store, so importing again only costs the check against dlib."""
    from training.model_store import import_base_version
    from training.models import ModelVersion

    return ModelVersion.objects.filter(pk=_imported_base_model.pk).first() or import_base_version()[0]


@pytest.fixture
def lfw_csv(tmp_path, faces_dir):
    """Ten real LFW pairs (five same, five different) as a CSV beside no images (paths are relative to lfw/)."""
    people = [path for path in sorted((faces_dir / "lfw").iterdir()) if len(list(path.glob("*.jpg"))) >= 2]
    lines = ["image_a,image_b,same"]
    for person in people[:5]:
        first, second = sorted(person.glob("*.jpg"))[:2]
        lines.append(f"{first.relative_to(faces_dir / 'lfw')},{second.relative_to(faces_dir / 'lfw')},1")
    for one, other in zip(people[5:10], people[10:15]):
        lines.append(f"{one.name}/{one.name}_0001.jpg,{other.name}/{other.name}_0001.jpg,0")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("\n".join(lines) + "\n")
    return pairs
