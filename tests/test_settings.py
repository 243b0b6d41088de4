import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from frid_site.celery import app
from frid_site.env import (
    env_bool,
    env_database,
    env_int,
    env_list,
    env_path,
    env_rate,
    env_secret,
    generated_secret,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def settings_in_subprocess(names: list[str], **environment: str) -> dict:
    """The named settings as a fresh process sees them with the given variables."""
    script = (
        "import json, sys, django; django.setup(); from django.conf import settings; "
        "print(json.dumps({name: getattr(settings, name, None) for name in sys.argv[1:]}, default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *names],
        env={**os.environ, **environment},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


# env_bool ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true", "True", "yes", "on"])
def test_env_bool_reads_true_words(monkeypatch, value):
    monkeypatch.setenv("DEBUG", value)
    assert env_bool("DEBUG", False) is True


@pytest.mark.parametrize("value", ["0", "false", "FALSE", "no", "off"])
def test_env_bool_reads_false_words(monkeypatch, value):
    monkeypatch.setenv("DEBUG", value)
    assert env_bool("DEBUG", True) is False


def test_env_bool_returns_the_default_when_unset_or_blank(monkeypatch):
    monkeypatch.delenv("DEBUG", raising=False)
    assert env_bool("DEBUG", True) is True
    monkeypatch.setenv("DEBUG", "  ")
    assert env_bool("DEBUG", False) is False


def test_env_bool_rejects_maybe_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match=r"^DEBUG .*'maybe'"):
        env_bool("DEBUG", False)


# env_int, env_list, env_path ---------------------------------------------------


def test_env_int_reads_a_whole_number(monkeypatch):
    monkeypatch.setenv("FRID_WORKERS", " 12 ")
    assert env_int("FRID_WORKERS", 1) == 12


def test_env_int_rejects_words_naming_the_variable(monkeypatch):
    monkeypatch.setenv("FRID_WORKERS", "twelve")
    with pytest.raises(ImproperlyConfigured, match="^FRID_WORKERS must be a whole number"):
        env_int("FRID_WORKERS", 1)


def test_env_list_splits_on_commas_and_drops_blank_items(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", " frid.example.org, ,127.0.0.1,")
    assert env_list("ALLOWED_HOSTS", ["localhost"]) == ["frid.example.org", "127.0.0.1"]


def test_env_list_returns_a_copy_of_the_default(monkeypatch):
    monkeypatch.delenv("ALLOWED_HOSTS", raising=False)
    default = ["localhost"]
    hosts = env_list("ALLOWED_HOSTS", default)
    hosts.append("other")
    assert default == ["localhost"]


def test_env_path_expands_home_and_makes_relative_paths_absolute(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FRID_DATA_DIR", "~/frid")
    assert env_path("FRID_DATA_DIR", Path("/unused")) == tmp_path / "frid"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FRID_DATA_DIR", "data")
    assert env_path("FRID_DATA_DIR", Path("/unused")) == tmp_path.resolve() / "data"


# Secrets ----------------------------------------------------------------------


def test_env_secret_reads_the_variable(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "k" * 60)
    monkeypatch.delenv("SECRET_KEY_FILE", raising=False)
    assert env_secret("SECRET_KEY") == "k" * 60


def test_env_secret_reads_the_file_without_its_trailing_newline(monkeypatch, tmp_path):
    (tmp_path / "key").write_text("from-a-file\n")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "key"))
    assert env_secret("SECRET_KEY") == "from-a-file"


def test_env_secret_is_none_when_neither_is_set(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SECRET_KEY_FILE", raising=False)
    assert env_secret("SECRET_KEY") is None


def test_env_secret_refuses_both_the_variable_and_the_file(monkeypatch, tmp_path):
    (tmp_path / "key").write_text("one")
    monkeypatch.setenv("SECRET_KEY", "two")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "key"))
    with pytest.raises(ImproperlyConfigured, match="^Set SECRET_KEY or SECRET_KEY_FILE, not both"):
        env_secret("SECRET_KEY")


def test_env_secret_names_the_file_variable_when_the_file_is_missing(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "absent"))
    with pytest.raises(ImproperlyConfigured, match=r"^SECRET_KEY_FILE: cannot read .*absent"):
        env_secret("SECRET_KEY")


def test_generated_secret_is_made_once_and_kept_private(tmp_path):
    path = tmp_path / "data" / "secret_key"
    first = generated_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 50 and len(set(first)) >= 5
    assert generated_secret(path) == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]


# env_database -----------------------------------------------------------------


def test_env_database_parses_a_postgres_url(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://frid:p%40ss@db.example.org:6543/faces?sslmode=require")
    assert env_database("DATABASE_URL") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "faces",
        "USER": "frid",
        "PASSWORD": "p@ss",
        "HOST": "db.example.org",
        "PORT": "6543",
        "OPTIONS": {"sslmode": "require"},
    }


def test_env_database_takes_a_socket_directory_from_the_host_parameter(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql:///frid?host=/var/run/postgresql")
    database = env_database("DATABASE_URL")
    assert (database["HOST"], database["PORT"], database["USER"], database["OPTIONS"]) == (
        "/var/run/postgresql", "", "", {}
    )


def test_env_database_is_none_when_unset(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert env_database("DATABASE_URL") is None


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://root@localhost/frid", "^DATABASE_URL must be a postgres:// URL"),
        ("db.example.org/frid", "^DATABASE_URL must be a postgres:// URL"),
        ("postgres://postgres@localhost:5432/", "^DATABASE_URL must name a database"),
        ("postgres://postgres@localhost:port/frid", "^DATABASE_URL has a port that is not a number"),
    ],
)
def test_env_database_rejects_bad_urls_naming_the_variable(monkeypatch, url, message):
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ImproperlyConfigured, match=message):
        env_database("DATABASE_URL")


# The settings ----------------------------------------------------------------


def test_tests_run_on_their_own_data_directory():
    assert settings.FRID_DATA_DIR == Path(os.environ["FRID_DATA_DIR"])
    assert settings.FRID_DATA_DIR != PROJECT_ROOT / "var"


def test_file_locations_are_paths_under_the_data_directory():
    data = settings.FRID_DATA_DIR
    assert (settings.FRID_MODEL_DIR, settings.MEDIA_ROOT) == (data / "models", data / "media")
    assert isinstance(settings.FRID_FACES_DIR, Path)


def test_the_defaults_pass_the_deployment_checks():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_defaults_keep_debug_off_and_generate_the_secret_key_in_the_data_directory(tmp_path):
    environment = {"FRID_DATA_DIR": str(tmp_path), "SECRET_KEY": "", "DEBUG": "", "DATABASE_URL": "postgres://x@127.0.0.1/x"}
    values = settings_in_subprocess(["DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"], **environment)
    assert values["DEBUG"] is False
    assert values["SECRET_KEY"] == (tmp_path / "secret_key").read_text().strip()
    assert values["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]


def test_frid_https_turns_on_the_redirect_and_hsts(tmp_path):
    names = ["SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER", "SILENCED_SYSTEM_CHECKS"]
    environment = {"FRID_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgres://x@127.0.0.1/x"}
    behind_tls = settings_in_subprocess(names, FRID_HTTPS="on", **environment)
    assert behind_tls["SECURE_SSL_REDIRECT"] is True
    assert behind_tls["SECURE_HSTS_SECONDS"] == 31536000
    assert behind_tls["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    # Only the HSTS preload warning: preloading is the domain owner's choice (FRID_HSTS_PRELOAD).
    assert behind_tls["SILENCED_SYSTEM_CHECKS"] == ["security.W021"]
    local = settings_in_subprocess(names, FRID_HTTPS="off", **environment)
    assert (local["SECURE_SSL_REDIRECT"], local["SECURE_HSTS_SECONDS"]) == (False, 0)


def test_a_bad_variable_stops_the_settings_naming_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={**os.environ, "FRID_DATA_DIR": str(tmp_path), "DEBUG": "maybe"},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG must be one of" in result.stderr


def production_environment(tmp_path: Path) -> dict[str, str]:
    """A deployment's variables: behind TLS, its own host name, every secret read from a file."""
    secrets = {
        "SECRET_KEY": generated_secret(tmp_path / "secrets" / "secret_key"),
        "DATABASE_URL": "postgres://frid:s3cret@db.example.org:5432/frid?sslmode=require",
        "CELERY_BROKER_URL": "redis://:br0ker@queue.example.org:6379/0",
    }
    environment = {"FRID_DATA_DIR": str(tmp_path / "data"), "FRID_HTTPS": "1", "DEBUG": "0",
                   "ALLOWED_HOSTS": "frid.example.org"}
    for name, secret in secrets.items():
        (tmp_path / "secrets" / name.lower()).write_text(secret + "\n")
        environment[name] = ""  # not both: the file only
        environment[f"{name}_FILE"] = str(tmp_path / "secrets" / name.lower())
    return environment


def test_every_secret_may_come_from_a_file(tmp_path):
    environment = production_environment(tmp_path)

    values = settings_in_subprocess(["SECRET_KEY", "DATABASES", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"],
                                    **environment)

    assert values["SECRET_KEY"] == (tmp_path / "secrets" / "secret_key").read_text().strip()
    database = values["DATABASES"]["default"]
    assert (database["HOST"], database["PASSWORD"], database["OPTIONS"]) == (
        "db.example.org", "s3cret", {"sslmode": "require"}
    )
    assert values["CELERY_BROKER_URL"] == values["CELERY_RESULT_BACKEND"] == "redis://:br0ker@queue.example.org:6379/0"
    assert not (tmp_path / "data" / "postgres").exists(), "no embedded server may start for a database in a file"


def test_a_secret_file_that_cannot_be_read_stops_the_settings_naming_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={**os.environ, "FRID_DATA_DIR": str(tmp_path), "DATABASE_URL": "",
             "DATABASE_URL_FILE": str(tmp_path / "absent")},
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL_FILE: cannot read" in result.stderr


def test_production_settings_pass_every_deployment_check(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        env={**os.environ, **production_environment(tmp_path)},
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (1 silenced)." in result.stdout  # W021, HSTS preload


@pytest.mark.parametrize("value, rate", [("60/minute", "60/minute"), (" 5/Second ", "5/second"), ("", "300/minute")])
def test_env_rate_reads_a_request_rate(monkeypatch, value, rate):
    monkeypatch.setenv("FRID_API_RATE", value)
    assert env_rate("FRID_API_RATE", "300/minute") == rate


@pytest.mark.parametrize("value", ["sixty/minute", "60", "60/fortnight", "-1/minute"])
def test_env_rate_rejects_what_is_not_a_rate_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("FRID_API_RATE", value)
    with pytest.raises(ImproperlyConfigured, match="^FRID_API_RATE must be a rate such as 60/minute"):
        env_rate("FRID_API_RATE", "300/minute")


def test_the_pixel_limit_may_be_lowered_but_not_raised_past_the_workers(tmp_path):
    environment = {"FRID_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgres://x@127.0.0.1/x"}
    assert settings_in_subprocess(["FRID_MAX_IMAGE_PIXELS"], FRID_MAX_IMAGE_PIXELS="12000000", **environment) == {
        "FRID_MAX_IMAGE_PIXELS": 12_000_000
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={**os.environ, **environment, "FRID_MAX_IMAGE_PIXELS": "100000000"},
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert "ImproperlyConfigured: FRID_MAX_IMAGE_PIXELS must be between 1 and 40000000" in result.stderr


# Celery ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task, queue",
    [
        ("training.tasks.train", "training"),  # the run itself, on the training worker
        ("training.tasks.train_on_schedule", "embeddings"),  # beat's entry only queues a run
        ("training.tasks.fail_stale_training_runs", "embeddings"),
        ("identity.tasks.switch_version", "embeddings"),  # sent to "bulk" explicitly
        ("identity.tasks.train_employee", "embeddings"),
    ],
)
def test_only_training_runs_go_to_the_training_queue(task, queue):
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_celery_acknowledges_late_and_takes_one_task_at_a_time():
    configuration = app.conf
    assert configuration.task_acks_late and configuration.task_reject_on_worker_lost
    assert configuration.worker_prefetch_multiplier == 1
    assert configuration.accept_content == ["json"] and configuration.task_serializer == "json"
    assert configuration.broker_url == configuration.result_backend == settings.CELERY_BROKER_URL
    longest_limit = configuration.task_time_limit
    assert configuration.broker_transport_options["visibility_timeout"] > longest_limit


def test_the_face_photos_fixture_finds_the_lfw_pair_lists(faces_dir):
    assert faces_dir == settings.FRID_FACES_DIR
    assert (faces_dir / "lfw-protocol" / "pairsDevTrain.txt").is_file()
