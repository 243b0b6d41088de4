import json
from pathlib import Path

from django.core.management.base import BaseCommand

from training import evaluation
from training.engine import NO_FACE_POLICIES
from training.management.pair_commands import (
    add_pair_arguments,
    embed_images,
    images_of,
    model_version,
    progress_bar,
    read_pairs,
)


class Command(BaseCommand):
    help = (
        "Score a model version on a list of labelled face pairs (LFW pairs file or CSV with header "
        "image_a,image_b,same): accuracy, 10-fold accuracy, ROC AUC, EER, TAR at FAR 1e-2 and 1e-3."
    )

    def add_arguments(self, parser):
        add_pair_arguments(parser)
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of a table.")
        parser.add_argument("--plot", type=Path, help="Save the ROC curve as a PNG here.")
        parser.add_argument("--reference", choices=["dlib"], help="Also run dlib's own pipeline on the same pairs.")
        parser.add_argument(
            "--no-face", choices=NO_FACE_POLICIES, default="fail",
            help="An image where no face is found: count its pairs as failed (default), or align "
            "a face guessed in the centre of the photo.",
        )
        parser.add_argument("--limit", type=int, help="Only the first N same and N different pairs (a quick look).")

    def handle(self, *args, **options):
        version = model_version(options["model"])
        pairs = read_pairs(options)
        if options["limit"]:
            pairs = evaluation.first_of_each_kind(pairs, options["limit"])
        images = images_of(pairs)

        systems = {f"FRID {version.name}": (embed_images(version, images, no_face=options["no_face"]),
                                            version.threshold)}
        if options["reference"] == "dlib":
            from training import reference

            systems["dlib"] = (reference.embed_files(images, progress=progress_bar("dlib")),
                               reference.DLIB_THRESHOLD)
        results = {name: evaluation.evaluate_embeddings(pairs, embedded, threshold)
                   for name, (embedded, threshold) in systems.items()}

        if options["plot"]:
            curves = {name: result.curve for name, result in results.items()}
            evaluation.plot_roc(curves, options["plot"], title=f"{options['pairs'].name}: {len(pairs)} pairs")
        if options["json"]:
            frid, *others = results.values()
            document = frid.as_dict()
            if others:
                document["reference"] = others[0].as_dict()
            self.stdout.write(json.dumps(document))
        else:
            self.stdout.write(evaluation.format_table(results))
            if options["plot"]:
                self.stdout.write(f"ROC curve saved to {options['plot']}")
