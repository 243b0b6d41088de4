import json
from pathlib import Path

from django.core.management.base import BaseCommand

from training import evaluation
from training.engine import NO_FACE_POLICIES
from training.management.pair_commands import (
    add_pair_arguments,
    embed_images_with,
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
        parser.add_argument(
            "--versus", action="append", default=[], metavar="VERSION",
            help="Another model version scored on the same pairs, in the same table (e.g. the base "
                 "version beside a fine-tuned one); may be given more than once.",
        )
        parser.add_argument(
            "--all-pairs", action="store_true",
            help="Also score every two of the listed photos, a photo's folder naming its person (LFW "
                 "layout): millions of impostor pairs, so TAR at FAR 1e-3 shows small real changes.",
        )

    def handle(self, *args, **options):
        version = model_version(options["model"])
        others = [model_version(name) for name in options["versus"]]
        pairs = read_pairs(options)
        if options["limit"]:
            pairs = evaluation.first_of_each_kind(pairs, options["limit"])
        images = images_of(pairs)

        versions = [version, *others]
        embedded = embed_images_with(versions, images, no_face=options["no_face"])
        systems = {f"FRID {each.name}": (embeddings, each.threshold) for each, embeddings in zip(versions, embedded)}
        if options["reference"] == "dlib":
            from training import reference

            systems["dlib"] = (reference.embed_files(images, progress=progress_bar("dlib")),
                               reference.DLIB_THRESHOLD)
        results = {name: evaluation.evaluate_embeddings(pairs, embedded, threshold)
                   for name, (embedded, threshold) in systems.items()}
        every_pair = ({name: evaluation.evaluate_all_pairs(embedded) for name, (embedded, _) in systems.items()}
                      if options["all_pairs"] else {})

        if options["plot"]:
            curves = {name: result.curve for name, result in results.items()}
            evaluation.plot_roc(curves, options["plot"], title=f"{options['pairs'].name}: {len(pairs)} pairs")
        if options["json"]:
            self.stdout.write(json.dumps(self.document(results, every_pair, [version, *others])))
        else:
            self.stdout.write(evaluation.format_table(results))
            if every_pair:
                self.stdout.write("\n" + evaluation.format_all_pairs_table(every_pair))
            if options["plot"]:
                self.stdout.write(f"ROC curve saved to {options['plot']}")

    @staticmethod
    def document(results: dict, every_pair: dict, versions: list) -> dict:
        """The asked-for version's figures at the top level (the agreed keys), "all_pairs" with
        --all-pairs, "versus" with the other versions' (same shape), "reference" with dlib's."""

        def figures(name: str) -> dict:
            found = results[name].as_dict()
            if name in every_pair:
                found["all_pairs"] = every_pair[name].as_dict()
            return found

        main, *others = versions
        document = figures(f"FRID {main.name}")
        if others:
            document["versus"] = {other.name: figures(f"FRID {other.name}") for other in others}
        if "dlib" in results:
            document["reference"] = figures("dlib")
        return document
