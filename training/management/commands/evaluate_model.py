import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training import evaluation
from training.engine import NO_FACE_POLICIES, FaceEngine
from training.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Score a model version on a list of labelled face pairs (LFW pairs file or CSV with header "
        "image_a,image_b,same): accuracy, 10-fold accuracy, ROC AUC, EER, TAR at FAR 1e-2 and 1e-3."
    )

    def add_arguments(self, parser):
        parser.add_argument("--pairs", required=True, type=Path, help="LFW pairs file or CSV.")
        parser.add_argument("--images", required=True, type=Path, help="Folder the pair paths are relative to.")
        parser.add_argument("--model", help="Model version name (default: the active version).")
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
        version = self._version(options["model"])
        try:
            pairs = evaluation.read_pairs(options["pairs"], options["images"])
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from error
        if options["limit"]:
            pairs = evaluation.first_of_each_kind(pairs, options["limit"])
        if not pairs:
            raise CommandError(f"{options['pairs']} lists no pairs.")
        images = sorted({path for pair in pairs for path in (pair.image_a, pair.image_b)})

        engine = FaceEngine(version.embedder())
        rows = {
            f"FRID {version.name}": engine.embed_files(
                images, no_face=options["no_face"], progress=self._progress("FRID")
            )
        }
        if options["reference"] == "dlib":
            from training import reference

            rows["dlib"] = reference.embed_files(images, progress=self._progress("dlib"))

        results = {}
        curves = {}
        for name, embedded in rows.items():
            threshold = version.threshold if name.startswith("FRID") else 0.6
            result = evaluation.evaluate_embeddings(pairs, embedded, threshold)
            results[name] = result
            curves[name] = result.curve

        if options["plot"]:
            evaluation.plot_roc(curves, options["plot"], title=f"{options['pairs'].name}: {len(pairs)} pairs")
        if options["json"]:
            (first, *others) = results.values()
            document = first.as_dict()
            if others:
                document["reference"] = others[0].as_dict()
            self.stdout.write(json.dumps(document))
        else:
            self.stdout.write(evaluation.format_table(results))
            if options["plot"]:
                self.stdout.write(f"ROC curve saved to {options['plot']}")

    def _version(self, name):
        try:
            return ModelVersion.objects.get(name=name) if name else ModelVersion.objects.active()
        except ModelVersion.DoesNotExist as error:
            known = ", ".join(ModelVersion.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"{error or 'No model version ' + repr(name)} (known versions: {known})") from error

    def _progress(self, label):
        def wrap(items):
            return tqdm(items, desc=f"{label}: embedding images", unit="image", file=sys.stderr,
                        disable=None, mininterval=2)

        return wrap
