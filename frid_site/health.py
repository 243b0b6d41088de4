"""Liveness, readiness and metrics for a load balancer and Prometheus: the checks, then thin views.

- ``GET /health/``: the process answers. Touches nothing else (no database, no broker): always 200.
- ``GET /ready/``: this process can serve: the database answers and every migration is applied, the
  task broker is reachable, and a model version is active. JSON with each check's result and a
  plain-words message; 200 when all pass, 503 otherwise.
- ``GET /metrics``: Prometheus's text exposition format (version 0.0.4), computed by SQL and broker
  queries at scrape time, so that every gunicorn process gives the same answer: verify latency (a
  histogram) and decisions (a counter) from the append-only ``VerificationAttempt`` rows (never
  deleted, so cumulative counts are valid counters), queue depth per Celery queue, face templates
  and training runs by status, the active model version.

None of them needs a login, and none says anything secret or personal (no broker URL, no host, no
employee). ``/metrics`` answers only loopback clients that did not come through a proxy, or,
with ``FRID_METRICS_TOKEN`` set, whoever sends ``Authorization: Bearer <token>``. All three are
exempt from the HTTPS redirect (``SECURE_REDIRECT_EXEMPT``): load balancers and Prometheus probe
the web processes over plain HTTP.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

# Every queue FRID's workers consume (settings.CELERY_TASK_ROUTES and identity.tasks).
QUEUES = ("verify", "embeddings", "bulk", "training")
# A probe must not hang on a broker that does not answer: give up after this long.
BROKER_TIMEOUT_SECONDS = 2.0
# Upper bounds (seconds) of the verify latency histogram: a whole check takes 0.1-4 s, a busy one
# waits FRID_VERIFY_TIMEOUT_SECONDS (5 s by default).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 20.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever REMOTE_ADDR says.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_REAL_IP", "HTTP_FORWARDED")

READY = "FRID is ready: the database, the task broker and the active model version all answer."
NOT_READY = "FRID is not ready to serve: {failed}. This process stays out of the rotation until it is."
METRICS_LOOPBACK_ONLY = (
    "Metrics are served only to this machine (a loopback address, not through the proxy). "
    "Scrape from here, or set FRID_METRICS_TOKEN and send Authorization: Bearer <token>."
)
METRICS_TOKEN_NEEDED = "Metrics need Authorization: Bearer <token>, the token in FRID_METRICS_TOKEN."


# --- Checks ------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    message: str


_migrations_applied = False  # once true, true for this process's life (a new release is a new process)


def check_database() -> Check:
    """The database answers a query, and no migration of this code is left unapplied."""
    global _migrations_applied
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        if not _migrations_applied:
            from django.db.migrations.executor import MigrationExecutor

            executor = MigrationExecutor(connection)
            unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
            if unapplied:
                return Check("database", False, f"The database answers, but {len(unapplied)} migration(s) are not "
                                                 "applied: run `python manage.py migrate`.")
            _migrations_applied = True
    except DatabaseError as error:
        logger.warning("readiness: the database does not answer: %s", error)
        return Check("database", False, "The database does not answer.")
    return Check("database", True, "The database answers and every migration is applied.")


def broker_connection():
    """A new connection to Celery's broker (the app's current URL), with a short timeout."""
    from frid_site.celery import app

    return app.connection_for_read(connect_timeout=BROKER_TIMEOUT_SECONDS)


def _connect(conn) -> None:
    conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, interval_max=0,
                           timeout=BROKER_TIMEOUT_SECONDS)


def check_broker() -> Check:
    """The task broker accepts a connection (Redis: answers PING)."""
    try:
        with broker_connection() as conn:
            _connect(conn)
            channel = conn.default_channel
            if hasattr(channel, "client") and hasattr(channel.client, "ping"):  # Redis
                channel.client.ping()
    except Exception as error:  # any transport's failure: kombu, redis, socket errors
        logger.warning("readiness: the task broker cannot be reached: %s", error)
        return Check("broker", False, "The task broker (Redis or RabbitMQ) cannot be reached.")
    return Check("broker", True, "The task broker is reachable.")


def check_model_version() -> Check:
    from training.models import ModelVersion

    try:
        name = ModelVersion.objects.filter(is_active=True).values_list("name", flat=True).first()
    except DatabaseError:
        return Check("model_version", False, "The active model version cannot be read: the database does not answer.")
    if name is None:
        return Check("model_version", False, "No model version is active: run `python manage.py import_base_model`.")
    return Check("model_version", True, f"The active model version is {name}.")


def readiness() -> list[Check]:
    database = check_database()
    checks = [database, check_broker()]
    if database.ok:
        checks.append(check_model_version())
    else:
        checks.append(Check("model_version", False, "Not checked: the database is not ready."))
    return checks


# --- Metrics -----------------------------------------------------------------------------------


def queue_depths() -> dict[str, int] | None:
    """Messages waiting in each of FRID's queues (not those a worker holds), or None when the broker
    cannot be reached. Redis: LLEN of the queue's lists (kombu keeps one per priority step); AMQP:
    a passive queue_declare, which a queue nobody declared yet answers NOT_FOUND (0 waiting)."""
    depths = {}
    try:
        with broker_connection() as conn:
            _connect(conn)
            channel = conn.default_channel
            if hasattr(channel, "_q_for_pri"):  # kombu's Redis transport
                for queue in QUEUES:
                    names = {channel._q_for_pri(queue, step) for step in channel.priority_steps}
                    depths[queue] = sum(channel.client.llen(name) for name in names)
                return depths
            for queue in QUEUES:
                # A failed passive declare closes the channel: one channel per queue.
                with conn.channel() as queue_channel:
                    try:
                        depths[queue] = queue_channel.queue_declare(queue=queue, passive=True).message_count
                    except conn.channel_errors:
                        depths[queue] = 0
    except Exception as error:
        logger.warning("metrics: the task broker cannot be reached: %s", error)
        return None
    return depths


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) and not float(value).is_integer() else str(int(value))


class Exposition:
    """Prometheus's text format: HELP and TYPE once per metric, then its samples."""

    def __init__(self):
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {_escape(help_text)}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels) -> None:
        self.lines.append(f"{name}{_labels(**labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def metrics_text() -> str:
    from identity.models import FaceTemplate, VerificationAttempt
    from training.models import ModelVersion, TrainingRun

    out = Exposition()

    # One GROUP BY over the append-only audit: bucket counts are cumulative by construction.
    buckets = {f"le_{index}": Count("pk", filter=Q(latency_ms__lte=bound * 1000))
               for index, bound in enumerate(LATENCY_BUCKETS)}
    rows = list(
        VerificationAttempt.objects.order_by().values("mode", "decision")
        .annotate(total=Count("pk"), timed=Count("latency_ms"), latency_sum=Sum("latency_ms"), **buckets)
        .order_by("mode", "decision")
    )
    out.metric("frid_verify_latency_seconds", "histogram",
               "Time from a check's arrival to its answer, by mode and decision (attempts with a latency recorded).")
    for row in rows:
        labels = {"mode": row["mode"], "decision": row["decision"]}
        for index, bound in enumerate(LATENCY_BUCKETS):
            out.sample("frid_verify_latency_seconds_bucket", row[f"le_{index}"], **labels, le=_number(bound))
        out.sample("frid_verify_latency_seconds_bucket", row["timed"], **labels, le="+Inf")
        out.sample("frid_verify_latency_seconds_sum", (row["latency_sum"] or 0) / 1000, **labels)
        out.sample("frid_verify_latency_seconds_count", row["timed"], **labels)
    out.metric("frid_verify_decisions_total", "counter", "Verification attempts, by mode and decision.")
    for row in rows:
        out.sample("frid_verify_decisions_total", row["total"], mode=row["mode"], decision=row["decision"])

    depths = queue_depths()
    out.metric("frid_broker_up", "gauge", "1 when the task broker answered this scrape, 0 otherwise.")
    out.sample("frid_broker_up", 0 if depths is None else 1)
    out.metric("frid_queue_messages", "gauge", "Tasks waiting in each Celery queue (not those a worker holds).")
    for queue, depth in (depths or {}).items():
        out.sample("frid_queue_messages", depth, queue=queue)

    templates = dict(FaceTemplate.objects.order_by().values_list("status").annotate(n=Count("pk")))
    out.metric("frid_face_templates", "gauge", "Face templates by status; pending ones wait for an embeddings worker.")
    for status in FaceTemplate.Status.values:
        out.sample("frid_face_templates", templates.get(status, 0), status=status)

    runs = dict(TrainingRun.objects.order_by().values_list("status").annotate(n=Count("pk")))
    out.metric("frid_training_runs", "gauge", "Training runs by status.")
    for status in TrainingRun.Status.values:
        out.sample("frid_training_runs", runs.get(status, 0), status=status)

    out.metric("frid_model_version_info", "gauge", "The model version enrollment and verification use now.")
    for name in ModelVersion.objects.filter(is_active=True).values_list("name", flat=True):
        out.sample("frid_model_version_info", 1, version=name)
    return out.text()


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the caller may read the metrics, else the answer in words (401 or 403)."""
    token = getattr(settings, "FRID_METRICS_TOKEN", None)
    if token:
        scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode()):
            return None
        response = HttpResponse(METRICS_TOKEN_NEEDED + "\n", status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    proxied = any(request.META.get(header) for header in FORWARDING_HEADERS)
    if _is_loopback(request.META.get("REMOTE_ADDR", "")) and not proxied:
        return None
    return HttpResponse(METRICS_LOOPBACK_ONLY + "\n", status=403, content_type="text/plain; charset=utf-8")


# --- Views -------------------------------------------------------------------------------------


@csrf_exempt
@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "message": "FRID's web process answers."})


@csrf_exempt
@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    checks = readiness()
    failed = [check for check in checks if not check.ok]
    message = NOT_READY.format(failed="; ".join(check.message for check in failed)) if failed else READY
    return JsonResponse(
        {"ready": not failed, "message": message, "checks": {check.name: {"ok": check.ok, "message": check.message} for check in checks}},
        status=503 if failed else 200,
    )


@csrf_exempt
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE)
