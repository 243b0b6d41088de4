from collections import Counter

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from training import evaluation
from training.management.pair_commands import add_pair_arguments, embed_images, images_of, model_version, read_pairs
from training.models import DEFAULT_OPEN_SET_MARGIN, OPEN_SET_FALSE_MATCH_RATE
from training.verification import calibrate_open_set, calibrate_threshold, operating_point

REPORTED_RATES = (1e-2, 1e-3, 1e-4, 1e-5)
OPEN_SET_GALLERY_SIZES = (10, 30, 100, 300, 600)
OPEN_SET_TRIALS = 50  # x 400 strangers: 20,000 stranger searches per gallery size


class Command(BaseCommand):
    help = (
        "Choose a model version's decision threshold for a target false-match rate, from labelled "
        "pairs of photos (separately from training and from search)."
    )

    def add_arguments(self, parser):
        add_pair_arguments(parser)
        parser.add_argument("--far", type=float, default=1e-3, help="Target false-match rate (default 1e-3).")
        parser.add_argument(
            "--all-pairs", action="store_true",
            help="Compare every two photos of the listed images, taking each photo's folder as its "
            "person (LFW layout): far more impostor pairs, so small rates can be measured.",
        )
        parser.add_argument(
            "--open-set", action="store_true",
            help="Also calibrate 1:N searches with the margin rule: simulate galleries of the listed "
            "photos' people (folder = person) and choose, per gallery size, the threshold that "
            "accepts 1%% of strangers.",
        )
        parser.add_argument("--margin", type=float, default=DEFAULT_OPEN_SET_MARGIN,
                            help=f"The margin rule's margin for --open-set (default {DEFAULT_OPEN_SET_MARGIN}).")
        parser.add_argument("--save", action="store_true", help="Store the threshold(s) on the version.")

    def handle(self, *args, **options):
        version = model_version(options["model"])
        pairs = read_pairs(options)
        images = images_of(pairs)
        embedded = embed_images(version, images)
        if options["all_pairs"]:
            genuine, impostor = evaluation.distances_between_all_photos(embedded)
        else:
            genuine, impostor = evaluation.distances_by_label(pairs, embedded)
        try:
            chosen = calibrate_threshold(genuine, impostor, options["far"])
        except ValueError as error:
            raise CommandError(f"{error} (--all-pairs compares every two photos)") from error

        not_compared = int(np.isinf(genuine).sum() + np.isinf(impostor).sum())
        self.stdout.write(f"{version.name}: {len(genuine)} genuine and {len(impostor)} impostor pairs "
                          f"from {len(images)} images ({len(embedded.failed)} without a face or unreadable: "
                          f"{not_compared} pairs not compared, counted as non-matches)")
        self.stdout.write(f"{'target FAR':>10}  {'threshold':>9}  {'measured FAR':>12}  {'TAR':>7}")
        points = []
        for rate in REPORTED_RATES:
            if len(impostor) * rate >= 1:
                point = operating_point(genuine, impostor, rate)
                points.append([rate, round(point.threshold, 4)])
                self.stdout.write(f"{rate:>10g}  {point.threshold:>9.4f}  {point.false_match_rate:>12.2e}  "
                                  f"{point.true_match_rate:>7.2%}")
        if options["save"]:
            version.threshold = round(chosen.threshold, 4)
            version.threshold_source = (
                f"calibrated at FAR {options['far']:g} on {options['pairs'].name}"
                f"{' (all pairs)' if options['all_pairs'] else ''}: TAR {chosen.true_match_rate:.2%}"
            )
            version.metrics = {**version.metrics, "calibration_points": points, "calibration": {
                "pairs_file": options["pairs"].name, "all_pairs": options["all_pairs"],
                "target_far": options["far"], "threshold": chosen.threshold,
                "far": chosen.false_match_rate, "tar": chosen.true_match_rate,
                "genuine_pairs": chosen.genuine_pairs, "impostor_pairs": chosen.impostor_pairs}}
        if options["open_set"]:
            open_set = self.calibrate_open_set(embedded, options["margin"])
            if options["save"]:
                version.metrics = {**version.metrics, "open_set": open_set}
        if options["save"]:
            version.save(update_fields=["threshold", "threshold_source", "metrics"])
            self.stdout.write(self.style.SUCCESS(f"Saved threshold {version.threshold} on {version.name}."))

    def calibrate_open_set(self, embedded, margin: float) -> dict:
        """Per gallery size, the threshold at which 1% of strangers are accepted under the margin rule."""
        paths = [path for path, embedding in embedded.embeddings.items() if embedding is not None]
        vectors = np.array([embedded.embeddings[path] for path in paths])
        people = [path.parent.name for path in paths]
        enrollable = sum(count >= 2 for count in Counter(people).values())
        sizes = [size for size in OPEN_SET_GALLERY_SIZES if size <= enrollable]
        points = calibrate_open_set(vectors, people, sizes, margin, OPEN_SET_FALSE_MATCH_RATE,
                                    trials=OPEN_SET_TRIALS)
        self.stdout.write(f"\n1:N with the margin rule (margin {margin:g}), {OPEN_SET_FALSE_MATCH_RATE:.0%} of "
                          f"strangers accepted; {enrollable} people with two photos can be enrolled:")
        self.stdout.write(f"{'gallery':>7}  {'threshold':>9}  {'strangers accepted':>18}  {'found':>7}  {'searches':>8}")
        for point in points:
            self.stdout.write(f"{point.gallery_size:>7}  {point.threshold:>9.4f}  {point.false_positive_rate:>18.2%}  "
                              f"{point.true_positive_rate:>7.2%}  {point.stranger_searches:>8}")
        return {"margin": margin, "false_positive_rate": OPEN_SET_FALSE_MATCH_RATE,
                "points": [[point.gallery_size, round(point.threshold, 4)] for point in points]}
