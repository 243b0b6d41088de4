import numpy as np
from django.core.management.base import BaseCommand, CommandError

from training import calibration, evaluation
from training.management.pair_commands import add_pair_arguments, embed_images, images_of, model_version, read_pairs
from training.models import DEFAULT_OPEN_SET_MARGIN, OPEN_SET_FALSE_MATCH_RATE


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
        described = f"{options['pairs'].name}{' (all pairs)' if options['all_pairs'] else ''}"
        try:
            calibrated = calibration.calibrate(genuine, impostor, options["far"], described)
        except ValueError as error:
            raise CommandError(f"{error} (--all-pairs compares every two photos)") from error

        not_compared = int(np.isinf(genuine).sum() + np.isinf(impostor).sum())
        self.stdout.write(f"{version.name}: {len(genuine)} genuine and {len(impostor)} impostor pairs "
                          f"from {len(images)} images ({len(embedded.failed)} without a face or unreadable: "
                          f"{not_compared} pairs not compared, counted as non-matches)")
        self.stdout.write(f"{'target FAR':>10}  {'threshold':>9}  {'measured FAR':>12}  {'TAR':>7}")
        for rate, point in calibrated.points:
            self.stdout.write(f"{rate:>10g}  {point.threshold:>9.4f}  {point.false_match_rate:>12.2e}  "
                              f"{point.true_match_rate:>7.2%}")
        if options["open_set"]:
            self.calibrate_open_set(calibrated, embedded, options["margin"])
        if options["save"]:
            version.save_calibration(calibrated.as_saved(), by_name="calibrate_model")
            self.stdout.write(self.style.SUCCESS(f"Saved threshold {version.threshold} on {version.name}."))

    def calibrate_open_set(self, calibrated, embedded, margin: float) -> None:
        """Per gallery size, the threshold at which 1% of strangers are accepted under the margin rule."""
        paths = [path for path, embedding in embedded.embeddings.items() if embedding is not None]
        vectors = np.array([embedded.embeddings[path] for path in paths])
        calibration.add_open_set(calibrated, vectors, [path.parent.name for path in paths], margin)
        self.stdout.write(f"\n1:N with the margin rule (margin {margin:g}), {OPEN_SET_FALSE_MATCH_RATE:.0%} of "
                          f"strangers accepted; {calibrated.enrollable_people} people with two photos can be enrolled:")
        self.stdout.write(f"{'gallery':>7}  {'threshold':>9}  {'strangers accepted':>18}  {'found':>7}  {'searches':>8}")
        for point in calibrated.open_set:
            self.stdout.write(f"{point.gallery_size:>7}  {point.threshold:>9.4f}  {point.false_positive_rate:>18.2%}  "
                              f"{point.true_positive_rate:>7.2%}  {point.stranger_searches:>8}")
