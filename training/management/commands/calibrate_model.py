import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training import evaluation
from training.engine import FaceEngine
from training.models import ModelVersion
from training.verification import calibrate_threshold, operating_point

REPORTED_RATES = (1e-2, 1e-3, 1e-4, 1e-5)


class Command(BaseCommand):
    help = (
        "Choose a model version's decision threshold for a target false-match rate, from labelled "
        "pairs of photos (separately from training and from search)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--pairs", required=True, type=Path, help="LFW pairs file or CSV.")
        parser.add_argument("--images", required=True, type=Path, help="Folder the pair paths are relative to.")
        parser.add_argument("--far", type=float, default=1e-3, help="Target false-match rate (default 1e-3).")
        parser.add_argument("--model", help="Model version name (default: the active version).")
        parser.add_argument(
            "--all-pairs", action="store_true",
            help="Compare every two photos of the listed images, taking each photo's folder as its "
            "person (LFW layout): far more impostor pairs, so small rates can be measured.",
        )
        parser.add_argument("--save", action="store_true", help="Store the threshold on the version.")

    def handle(self, *args, **options):
        try:
            version = ModelVersion.objects.get(name=options["model"]) if options["model"] else ModelVersion.objects.active()
        except ModelVersion.DoesNotExist as error:
            raise CommandError(f"No such model version: {options['model'] or 'no active version'}") from error
        try:
            pairs = evaluation.read_pairs(options["pairs"], options["images"])
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from error
        images = sorted({path for pair in pairs for path in (pair.image_a, pair.image_b)})
        embedded = FaceEngine(version.embedder()).embed_files(
            images, progress=lambda items: tqdm(items, desc="embedding images", unit="image", file=sys.stderr,
                                                disable=None, mininterval=2))
        if options["all_pairs"]:
            genuine, impostor = evaluation.distances_between_all_photos(embedded)
        else:
            genuine, impostor = evaluation.distances_by_label(pairs, embedded)
        try:
            chosen = calibrate_threshold(genuine, impostor, options["far"])
        except ValueError as error:
            raise CommandError(f"{error} (--all-pairs compares every two photos)") from error

        self.stdout.write(f"{version.name}: {len(genuine)} genuine and {len(impostor)} impostor pairs "
                          f"from {len(images)} images ({len(embedded.failed)} without a face)")
        self.stdout.write(f"{'target FAR':>10}  {'threshold':>9}  {'measured FAR':>12}  {'TAR':>7}")
        for rate in REPORTED_RATES:
            if len(impostor) * rate >= 1:
                point = operating_point(genuine, impostor, rate)
                self.stdout.write(f"{rate:>10g}  {point.threshold:>9.4f}  {point.false_match_rate:>12.2e}  "
                                  f"{point.true_match_rate:>7.2%}")
        if options["save"]:
            version.threshold = round(chosen.threshold, 4)
            version.threshold_source = (
                f"calibrated at FAR {options['far']:g} on {options['pairs'].name}"
                f"{' (all pairs)' if options['all_pairs'] else ''}: TAR {chosen.true_match_rate:.2%}"
            )
            version.metrics = {**version.metrics, "calibration": {
                "pairs_file": options["pairs"].name, "all_pairs": options["all_pairs"],
                "target_far": options["far"], "threshold": chosen.threshold,
                "far": chosen.false_match_rate, "tar": chosen.true_match_rate,
                "genuine_pairs": chosen.genuine_pairs, "impostor_pairs": chosen.impostor_pairs}}
            version.save(update_fields=["threshold", "threshold_source", "metrics"])
            self.stdout.write(self.style.SUCCESS(f"Saved threshold {version.threshold} on {version.name}."))
