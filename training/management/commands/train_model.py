"""python manage.py train_model [--public DIR] [--backbone dlib|resnet50] [--option KEY=VALUE ...] [--json]

The same training run a worker executes, in the foreground, with a progress bar on stderr. With
--json the last line on stdout is one JSON object: {run, status, version, metrics}.
"""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training import runs
from training.models import TrainingRun

# What --json says of each way a run ends.
JSON_STATUS = {TrainingRun.Status.SUCCEEDED: "accepted", TrainingRun.Status.REJECTED: "rejected",
               TrainingRun.Status.FAILED: "failed"}


class Command(BaseCommand):
    help = ("Fine-tune the active network on consenting employees' faces (and optionally a folder of "
            "public labelled faces), judge it with the quality gate, and switch to it if it is better.")

    def add_arguments(self, parser):
        parser.add_argument("--public", type=Path, help="A folder of labelled faces to add, one sub-folder per person.")
        parser.add_argument("--backbone", choices=["dlib", "resnet50"], default="dlib",
                            help="dlib: fine-tune the active network (default); resnet50: train Keras' "
                                 "ResNet50 from random weights with the same triplet loss.")
        parser.add_argument("--reference", type=Path,
                            help="The gate's reference folder (default: every LFW DevTest image under FRID_FACES_DIR).")
        parser.add_argument("--epochs", type=int, help="At most this many epochs (early stopping may end sooner).")
        parser.add_argument("--learning-rate", type=float, help="Adam's learning rate (default 1e-5).")
        parser.add_argument("--trainable", nargs="+", metavar="PREFIX",
                            help="Layer-name prefixes that train (default: stage4 stage5 embedding, both 256-channel stages and the embedding layer).")
        parser.add_argument("--option", nargs="+", metavar="KEY=VALUE", default=[],
                            help="Any other training parameter by its name (training.finetune.Parameters: "
                                 "margin, loss, squared, patience, identities_per_batch, images_per_identity, "
                                 "mirror, ...); VALUE is read as JSON, else taken as text. Default: none.")
        parser.add_argument("--json", action="store_true", help="End with one JSON line: {run, status, version, metrics}.")

    def handle(self, *args, **options):
        run, created = runs.queue(TrainingRun.Trigger.COMMAND, self.parameters(options))
        if not created:
            raise CommandError(f"Training run {run.pk} is already {run.get_status_display()}: one run at a "
                               f"time. Wait for it, or see it in the admin.")
        claimed = runs.claim(run.pk, worker=f"{runs.worker_name()} (train_model)")
        if claimed is None:
            raise CommandError(f"Training run {run.pk} could not start: another run is running.")
        bar = tqdm(total=100, unit="%", file=sys.stderr, disable=None, bar_format="{l_bar}{bar}| {elapsed}")

        def show(current):
            bar.set_description(current.phase[:60])
            bar.update(round(current.progress * 100) - bar.n)

        run = runs.execute(claimed, on_change=show)
        bar.close()
        self.summarise(run)
        if options["json"]:
            self.stdout.write(json.dumps({
                "run": run.pk, "status": JSON_STATUS.get(run.status, run.status),
                "version": run.candidate.name if run.candidate else None,
                "metrics": {"before": run.metrics_before, "after": run.metrics_after, "gate": run.gate,
                            "seconds": run.duration_seconds},
            }))
        if run.status == TrainingRun.Status.FAILED:
            raise CommandError(run.error)

    def parameters(self, options) -> dict:
        training = {"backbone": options["backbone"]}
        for option, key in (("epochs", "epochs"), ("learning_rate", "learning_rate"), ("trainable", "trainable")):
            if options[option] is not None:
                training[key] = options[option]
        for item in options.get("option") or []:
            key, equals, value = item.partition("=")
            if not equals or not key:
                raise CommandError(f"--option takes KEY=VALUE, not {item!r}.")
            try:
                training[key.replace("-", "_")] = json.loads(value)
            except json.JSONDecodeError:
                training[key.replace("-", "_")] = value
        return {"public": str(options["public"] or ""), "reference": str(options["reference"] or ""),
                "training": training}

    def summarise(self, run: TrainingRun) -> None:
        write = self.stdout.write
        write(f"Training run {run.pk}: {run.get_status_display()} after {run.duration_seconds or 0:.0f} s")
        for line in run.gate.get("reasons", []):
            write(f"  {line}")
        if run.candidate:
            write(f"  candidate version: {run.candidate.name} (threshold {run.candidate.threshold})")
