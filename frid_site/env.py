"""Typed readers for the environment variables that configure FRID.

Each helper returns the default when the variable is unset or empty, and
raises ImproperlyConfigured naming the variable when its value makes no sense,
so that a typo stops the process at start instead of changing behaviour.
"""

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}
RATE_PERIODS = {"s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day"}


def env_value(name: str) -> str | None:
    """The variable's value, or None when it is unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def env_str(name: str, default: str) -> str:
    return env_value(name) or default


def env_bool(name: str, default: bool) -> bool:
    value = env_value(name)
    if value is None:
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of {sorted(TRUE_WORDS | FALSE_WORDS)}, not {value!r}."
    )


def env_int(name: str, default: int) -> int:
    value = env_value(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def env_float(name: str, default: float) -> float:
    value = env_value(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; blank items are dropped."""
    value = env_value(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_rate(name: str, default: str) -> str:
    """A request rate as DRF's throttles read it: a whole number, "/", and second, minute, hour or day."""
    value = env_value(name) or default
    count, _, period = value.partition("/")
    if not count.strip().isdigit() or period.strip().lower() not in RATE_PERIODS:
        raise ImproperlyConfigured(f"{name} must be a rate such as 60/minute (per second, minute, hour or day), not {value!r}.")
    return f"{int(count)}/{period.strip().lower()}"


def env_path(name: str, default: Path) -> Path:
    """An absolute path: ~ is expanded and a relative path is taken from the working directory."""
    value = env_value(name)
    return Path(value).expanduser().resolve() if value else default


def env_secret(name: str) -> str | None:
    """The secret from NAME, or read from the file named by NAME_FILE (as Docker and systemd pass them)."""
    file_name = f"{name}_FILE"
    value, path = env_value(name), env_value(file_name)
    if value and path:
        raise ImproperlyConfigured(f"Set {name} or {file_name}, not both.")
    if value:
        return value
    if not path:
        return None
    try:
        secret = Path(path).expanduser().read_text().strip()
    except OSError as error:
        raise ImproperlyConfigured(f"{file_name}: cannot read {path}: {error.strerror}.") from None
    if not secret:
        raise ImproperlyConfigured(f"{file_name}: {path} is empty.")
    return secret


def generated_secret(path: Path) -> str:
    """A strong random secret, made on first use and kept in path (mode 0600) from then on."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(get_random_secret_key() + "\n")
        try:
            # link() never replaces: when two processes race, both read the winner's key.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def env_database(name: str) -> dict | None:
    """Django DATABASES settings parsed from a postgres:// URL, or None when the variable is unset.

    A unix socket is named by a percent-encoded host or a host= query parameter;
    other query parameters (sslmode, ...) become connection OPTIONS. The URL holds the password,
    so it may come from the file named by NAME_FILE instead (env_secret).
    """
    url = env_secret(name)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        raise ImproperlyConfigured(
            f"{name} must be a postgres:// URL (FRID needs PostgreSQL with pgvector), "
            f"not {parts.scheme or 'a URL without a scheme'}."
        )
    options = dict(parse_qsl(parts.query))
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ImproperlyConfigured(f"{name} must name a database, as in postgres://user@host:5432/frid.")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has a port that is not a number.") from None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": options.pop("host", None) or unquote(parts.hostname or ""),
        "PORT": str(port or ""),
        "OPTIONS": options,
    }
