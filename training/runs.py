"""Training runs: queued by HR, the schedule or train_model, claimed by one worker at a time, and
executed: data -> fine-tuning from the active version -> the gate -> a candidate version that is
either accepted (thresholds calibrated, then switched to by identity in the background) or kept,
rejected, for inspection.

The database row is the run's truth: its status, phase and progress are what the admin page and
train_model show, and its heartbeat is how a run whose worker died is found and marked failed.
TensorFlow is imported only inside ``execute`` (web processes queue runs and never load it).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from training import signals
from training.models import ModelVersion, ModelVersionEvent, TrainingRun

logger = logging.getLogger(__name__)

Status = TrainingRun.Status
# Progress (0..1) at the start of each phase; training's epochs fill the span up to "evaluating".
PHASES = {
    "collecting faces": 0.0,
    "measuring the active version": 0.10,
    "training": 0.25,
    "measuring the candidate": 0.85,
    "calibrating the candidate's thresholds": 0.93,
}
# A run without its own copies these; train_model's options and HR's parameters override them.
# The fine-tuning's own ("training") are training.finetune.Parameters, written out in full when
# the run starts, so its page shows every value it used.
DEFAULT_RUN_PARAMETERS = {"public": "", "reference": "", "training": {}}


class RunFailed(RuntimeError):
    """A run cannot go on; the message says why in plain words, and what to do."""


def worker_name() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


# --- Queueing, claiming, failing -----------------------------------------------------------------


def queue(trigger: str, parameters: dict | None = None, by=None) -> tuple[TrainingRun, bool]:
    """A queued run, or the unfinished one already there (one run at a time: a second "train now"
    while one is queued or running shows that one). Returns (run, created)."""
    with transaction.atomic():
        unfinished = TrainingRun.objects.select_for_update().unfinished().order_by("created_at").first()
        if unfinished is not None:
            return unfinished, False
        run = TrainingRun.objects.create(
            trigger=trigger, parameters={**DEFAULT_RUN_PARAMETERS, **(parameters or {})}, created_by=by,
            phase="queued: waiting for a training worker",
        )
    return run, True


def claim(run_id: int, worker: str | None = None) -> TrainingRun | None:
    """Take a queued run for this process: None if it is not queued any more, or if another run is
    running (the partial unique index on running runs refuses a second one)."""
    fail_stale_runs()
    now = timezone.now()
    try:
        with transaction.atomic():
            claimed = TrainingRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
                status=Status.RUNNING, started_at=now, heartbeat_at=now, finished_at=None,
                worker=worker or worker_name(), phase="starting", progress=0.0, error="",
            )
    except IntegrityError:
        return None
    return TrainingRun.objects.get(pk=run_id) if claimed else None


def fail_stale_runs(now=None) -> int:
    """Running runs that stopped reporting (their worker was killed or lost) become failed."""
    now = now or timezone.now()
    stale = TrainingRun.objects.filter(
        status=Status.RUNNING, heartbeat_at__lt=now - timedelta(minutes=settings.FRID_TRAINING_STALE_MINUTES)
    )
    return sum(_fail_lost(run, "it stopped reporting progress") for run in stale)


def fail_orphaned_runs(hostname: str | None = None) -> int:
    """Runs marked running by a process of this host that no longer exists (a worker restarted
    after being killed) become failed at once."""
    prefix = f"{hostname or socket.gethostname()} pid "
    orphaned = [run for run in TrainingRun.objects.filter(status=Status.RUNNING, worker__startswith=prefix)
                if not _process_exists(int(run.worker[len(prefix):] or 0))]
    return sum(_fail_lost(run, "its worker process is gone") for run in orphaned)


def _fail_lost(run: TrainingRun, why: str) -> bool:
    message = (f"The training worker stopped during \"{run.phase}\" ({why}): it was killed, ran out of "
               f"memory or lost its machine. Nothing was switched; the active version is unchanged. "
               f"Press \"Retry\" to run it again.")
    updated = TrainingRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
        status=Status.FAILED, error=message, finished_at=timezone.now(),
        log=run.log + f"[{timezone.now():%Y-%m-%d %H:%M:%S}] {message}\n",
    )
    if updated:
        logger.warning("training run %s failed: %s", run.pk, message)
    return bool(updated)


def _process_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed process whose parent died too may linger as a zombie until something reaps it.
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (not Linux): trust the signal check
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def retry(run: TrainingRun, by=None) -> TrainingRun:
    """A failed run queued again with the same parameters (a new run: the failed one stays as it was)."""
    if run.status != Status.FAILED:
        raise RunFailed(f"Only failed runs can be retried; run {run.pk} is {run.get_status_display()}.")
    again, created = queue(run.trigger, run.parameters, by=by)
    if not created:
        raise RunFailed(f"Run {again.pk} is already {again.get_status_display()}: wait for it to finish.")
    return again


def stop(run: TrainingRun, by=None) -> bool:
    """Stop a queued or running run: it ends failed ("stopped by ..."); the worker notices between
    batches and saves nothing. Returns whether there was anything to stop."""
    who = by.get_username() if by is not None else "FRID"
    message = f"Stopped by {who}. Nothing was switched; the active version is unchanged."
    return bool(TrainingRun.objects.filter(pk=run.pk, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.FAILED, error=message, finished_at=timezone.now(),
    ))


# --- Executing ---------------------------------------------------------------------------------


@dataclass
class Reporter:
    """Writes a run's phase, progress, epochs and log lines to its row (which is its heartbeat)."""

    run: TrainingRun
    on_change: Callable[[TrainingRun], None] | None = None

    def phase(self, phase: str, progress: float | None = None) -> None:
        self.run.phase = phase
        self.run.progress = PHASES.get(phase, self.run.progress) if progress is None else progress
        self.say(phase)

    def say(self, line: str) -> None:
        logger.info("training run %s: %s", self.run.pk, line)
        self.run.log += f"[{timezone.now():%Y-%m-%d %H:%M:%S}] {line}\n"
        self.save()

    def epoch(self, epoch: int, epochs: int, record: dict) -> None:
        self.run.losses = [*self.run.losses, _json_ready(record)]
        start, end = PHASES["training"], PHASES["measuring the candidate"]
        self.run.progress = start + (end - start) * epoch / max(epochs, 1)
        self.run.phase = f"training: epoch {epoch} of {epochs}"
        self.say(f"epoch {epoch}/{epochs}: " + ", ".join(f"{key} {value:.4g}" for key, value in record.items()
                                                        if isinstance(value, float)))

    def save(self) -> None:
        self.run.heartbeat_at = timezone.now()
        TrainingRun.objects.filter(pk=self.run.pk).update(
            phase=self.run.phase[:100], progress=self.run.progress, losses=self.run.losses, log=self.run.log,
            heartbeat_at=self.run.heartbeat_at,
        )
        if self.on_change:
            self.on_change(self.run)


def execute(run: TrainingRun, on_change: Callable[[TrainingRun], None] | None = None) -> TrainingRun:
    """Run a claimed run to its end: succeeded (accepted), rejected, or failed (with the error)."""
    report = Reporter(run, on_change)
    try:
        _execute(run, report)
    except Exception as error:  # any failure ends the run as failed, with what went wrong
        logger.exception("training run %s failed", run.pk)
        message = str(error) if isinstance(error, RunFailed) else f"{type(error).__name__}: {error}"
        report.say(f"failed: {message}")
        _finish(run, Status.FAILED, error=message)
    return run


def _execute(run: TrainingRun, report: Reporter) -> None:
    from training import data, finetune, gate

    report.say(f"worker {run.worker}; {finetune.configure_tensorflow()}")
    parameters = finetune.Parameters.from_json(run.parameters.get("training", {}))
    run.parameters = {**run.parameters, "training": parameters.as_json()}
    TrainingRun.objects.filter(pk=run.pk).update(parameters=run.parameters)
    base = ModelVersion.objects.active()
    run.base_version = base
    TrainingRun.objects.filter(pk=run.pk).update(base_version=base)

    report.phase("collecting faces")
    reference = _reference_set(run, report)
    faces = _training_faces(run, report, exclude=set(reference.names))
    train, validation = data.split_by_identity(faces, parameters.validation_share, seed=parameters.seed)
    report.say(f"{train.identities} identities ({len(train)} faces) to train on, {validation.identities} "
               f"({len(validation)}) to validate on, {reference.identities} ({len(reference)}) in the reference set")

    report.phase("measuring the active version")
    base_model = _load(base)
    before = {"validation": gate.all_pairs_metrics(finetune.embed(base_model, validation.chips), validation.labels),
              "reference": gate.all_pairs_metrics(finetune.embed(base_model, reference.chips), reference.labels)}
    TrainingRun.objects.filter(pk=run.pk).update(metrics_before=before)
    run.metrics_before = before
    report.say(_figures("active version", before))

    report.phase("training")
    stop = _cancelled(run)
    if parameters.backbone == "resnet50":
        result = finetune.train_resnet50(train, validation, parameters, on_epoch=report.epoch, should_stop=stop)
    else:
        result = finetune.fine_tune(base_model, train, validation, parameters, on_epoch=report.epoch, should_stop=stop)
    if stop():
        report.say("stopped from the admin: nothing trained is kept")
        return
    report.say(f"trained in {result.seconds:.0f} s; best epoch {result.best_epoch}"
               f"{', stopped early' if result.stopped_early else ''}")

    report.phase("measuring the candidate")
    validation_embeddings = finetune.embed(result.model, validation.chips)
    reference_embeddings = finetune.embed(result.model, reference.chips)
    after = {"validation": gate.all_pairs_metrics(validation_embeddings, validation.labels),
             "reference": gate.all_pairs_metrics(reference_embeddings, reference.labels)}
    verdict = gate.judge(before, after)
    candidate = _save_candidate(run, base, result, parameters, before, after, verdict)
    TrainingRun.objects.filter(pk=run.pk).update(metrics_after=after, gate=verdict.as_json(), candidate=candidate)
    run.metrics_after, run.gate, run.candidate = after, verdict.as_json(), candidate
    report.say(_figures("candidate", after))
    report.say(("accepted: " if verdict.accepted else "rejected: ") + " ".join(verdict.reasons))
    if not verdict.accepted:
        _finish(run, Status.REJECTED)
        return

    report.phase("calibrating the candidate's thresholds")
    _calibrate(candidate, data.merge(validation, reference), numpy.concatenate([validation_embeddings, reference_embeddings]), run)
    report.say(f"threshold {candidate.threshold} ({candidate.threshold_source})")
    _finish(run, Status.SUCCEEDED, phase="accepted: re-embedding every photo, then switching")
    signals.candidate_accepted.send(sender=TrainingRun, version=candidate, run=run)


def _training_faces(run: TrainingRun, report: Reporter, exclude: set[str]):
    from training import data

    sets = [chips for _, chips in signals.training_data_requested.send(sender=TrainingRun, run=run) if chips is not None]
    employees = data.merge(*sets)
    report.say(f"{employees.identities} consenting employees ({len(employees)} faces)")
    public = run.parameters.get("public") or settings.FRID_TRAINING_PUBLIC_DIR
    if public:
        folder = Path(public)
        if not folder.is_dir():
            raise RunFailed(f"The public folder {folder} does not exist (one sub-folder per person).")
        chips = data.chips_from_folder(folder, exclude_names=exclude, cache_dir=settings.FRID_TRAINING_CACHE_DIR)
        report.say(f"{chips.identities} people ({len(chips)} faces) from the public folder {folder}, "
                   f"the reference set's people left out")
        employees = data.merge(employees, chips)
    enough = (employees.images_per_identity() >= 2).sum() if len(employees) else 0
    if enough < 10:
        raise RunFailed(
            f"Only {enough} people have two or more usable faces to train on; at least 10 are needed. "
            f"Enroll more employees who agreed to training (two photos each), or add a public folder."
        )
    return employees


def _reference_set(run: TrainingRun, report: Reporter):
    from training import data

    folder = run.parameters.get("reference") or settings.FRID_TRAINING_REFERENCE_DIR
    cache = settings.FRID_TRAINING_CACHE_DIR
    if folder:
        reference = data.chips_from_folder(Path(folder), min_images=1, cache_dir=cache)
        described = str(folder)
    else:
        try:
            reference = data.reference_chips(settings.FRID_FACES_DIR, cache_dir=cache)
        except FileNotFoundError as error:
            raise RunFailed(f"{error} Set FRID_FACES_DIR, or FRID_TRAINING_REFERENCE_DIR to a folder of people.") from error
        described = f"LFW DevTest under {settings.FRID_FACES_DIR}"
    if reference.identities < 2:
        raise RunFailed(f"The reference set {described} holds fewer than two people.")
    report.say(f"reference set: {described}")
    return reference


def _load(version: ModelVersion):
    import keras

    return keras.models.load_model(version.path, compile=False)


def _cancelled(run: TrainingRun) -> Callable[[], bool]:
    # HR can stop a run from its page: the row leaves "running".
    return lambda: not TrainingRun.objects.filter(pk=run.pk, status=Status.RUNNING).exists()


def _save_candidate(run, base, result, parameters, before, after, verdict) -> ModelVersion:
    from training.model_store import save_network

    stem = "resnet50-triplet" if parameters.backbone == "resnet50" else f"{base.name}-ft"
    name = f"{stem}-run{run.pk}"
    relative_path, digest = save_network(result.model, name)
    candidate, _ = ModelVersion.objects.update_or_create(
        name=name,
        defaults={
            "file": relative_path, "sha256": digest, "parent": base if parameters.backbone == "dlib" else None,
            "embedding_size": int(result.model.output_shape[-1]), "alignment": base.alignment, "mirror": parameters.mirror,
            # Until calibration: the parent's, so a candidate is never without one.
            "threshold": base.threshold, "threshold_source": f"not calibrated yet (the parent's, {base.name})",
            "metrics": {"training_run": run.pk, "gate": verdict.as_json(), "before": before, "after": after},
            "notes": f"Trained by run {run.pk} from {base.name} ({parameters.backbone}); "
                     f"{'accepted' if verdict.accepted else 'rejected'} by the gate.",
        },
    )
    candidate.record(ModelVersionEvent.Action.TRAINED, by=run.created_by, by_name=f"training run {run.pk}",
                     details={"run": run.pk, "accepted": verdict.accepted})
    return candidate


def _calibrate(candidate: ModelVersion, faces, embeddings, run: TrainingRun) -> None:
    """Thresholds from every person the candidate never trained on: the validation people and the
    reference set's. The 1:N thresholds sit in the tail of the strangers' distances, which a
    hundred validation people alone measure too loosely (a trial accepted 2% of strangers at
    its "1%" threshold); with the reference set's people too, ~1,100 people."""
    from training import calibration, gate
    from training.models import DEFAULT_OPEN_SET_MARGIN

    labels, names = faces.labels, faces.names
    people = [names[label] for label in labels]
    genuine, impostor = gate.pair_distances(embeddings, labels)
    described = f"the validation and reference people of training run {run.pk} (all pairs)"
    far = 1e-3 if len(impostor) >= 1000 else 1.0 / max(len(impostor), 1)
    calibrated = calibration.calibrate(genuine, impostor, far, described)
    calibration.add_open_set(calibrated, embeddings, people, DEFAULT_OPEN_SET_MARGIN)
    candidate.save_calibration(calibrated.as_saved(), by_name=f"training run {run.pk}")


def _finish(run: TrainingRun, status: str, error: str = "", phase: str | None = None) -> None:
    run.status, run.error, run.finished_at = status, error, timezone.now()
    run.phase = phase or {Status.SUCCEEDED: "accepted", Status.REJECTED: "rejected by the gate",
                          Status.FAILED: "failed"}[status]
    run.progress = 1.0 if status != Status.FAILED else run.progress
    TrainingRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
        status=status, error=error, finished_at=run.finished_at, phase=run.phase, progress=run.progress, log=run.log,
    )


def _figures(who: str, metrics: dict) -> str:
    return (f"{who}: TAR at FAR 1e-3 {_tar(metrics['validation']):.2%} on validation, "
            f"{_tar(metrics['reference']):.2%} on the reference set")


def _tar(metrics: dict) -> float:
    from training.gate import tar_key

    return float(metrics[tar_key()])


def _json_ready(record: dict) -> dict:
    return {key: (float(value) if hasattr(value, "__float__") and not isinstance(value, (int, bool)) else value)
            for key, value in record.items()}
