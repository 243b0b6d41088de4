"""manage.py check_search_recall: does the HNSW index find what exact search finds, on the live data?"""

from __future__ import annotations

import json
import time

import numpy
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from identity.models import FaceTemplate, search_settings
from training.models import ModelVersion

DEFAULT_SAMPLE = 200
DEFAULT_NOISE = 0.1
TOP = 10


def exact_nearest(embedding, version: ModelVersion, count: int) -> list[tuple[int, float]]:
    """FRID's search with index scans turned off: every searchable template measured and sorted."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_indexscan'), set_config('enable_indexscan', 'off', true)")
        previous = cursor.fetchone()[0]
        query = FaceTemplate.objects.searchable(version).nearest(embedding, version)
        query._index_search = False  # nothing but the plain query, in this transaction
        found = list(query.values_list("id", "distance")[:count])
        # SET LOCAL outlives a savepoint: an outer transaction gets its own value back.
        cursor.execute("SELECT set_config('enable_indexscan', %s, true)", [previous])
        return found


def index_nearest(embedding, version: ModelVersion, count: int) -> list[tuple[int, float]]:
    """FRID's search as matching runs it (the HNSW index, inside index_search())."""
    return list(FaceTemplate.objects.nearest(embedding, version).values_list("id", "distance")[:count])


def measure(version: ModelVersion, sample: int, noise: float, seed: int = 0) -> dict:
    """Recall@1 and @10 of the index against exact search, for ``sample`` searchable templates'
    embeddings each moved ``noise`` (Euclidean) in a random direction."""
    searchable = FaceTemplate.objects.searchable(version)
    gallery = searchable.count()
    result = {"version": version.name, "searchable_templates": gallery, "sample": 0, "noise": noise,
              **search_settings()}
    if gallery == 0:
        return result
    stored = list(searchable.order_by("?").values_list("embedding", flat=True)[:sample])
    rng = numpy.random.default_rng(seed)
    top1 = top10 = 0
    index_seconds, exact_seconds = [], []
    for embedding in stored:
        direction = rng.normal(size=len(embedding))
        probe = numpy.asarray(embedding) + noise * direction / numpy.linalg.norm(direction)
        started = time.perf_counter()
        found = index_nearest(probe, version, TOP)
        index_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        exact = exact_nearest(probe, version, TOP)
        exact_seconds.append(time.perf_counter() - started)
        # The same template first, or one exactly as near (a tie either order may break).
        top1 += bool(found) and (found[0][0] == exact[0][0] or abs(found[0][1] - exact[0][1]) < 1e-9)
        top10 += len({pk for pk, _ in found} & {pk for pk, _ in exact}) / min(TOP, len(exact))
    result.update(
        sample=len(stored),
        recall_at_1=top1 / len(stored),
        recall_at_10=top10 / len(stored),
        index_ms_median=1000 * float(numpy.median(index_seconds)),
        exact_ms_median=1000 * float(numpy.median(exact_seconds)),
    )
    return result


class Command(BaseCommand):
    help = (
        "Compare the HNSW index's answers with exact search on the live data: searchable templates "
        "of the active model version (a random sample, each moved --noise in a random direction, as "
        "another photo of the same person would be) are searched both ways; prints recall@1 and "
        "recall@10, the sample size and pgvector's search settings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE,
                            help=f"Templates searched (default {DEFAULT_SAMPLE}).")
        parser.add_argument("--noise", type=float, default=DEFAULT_NOISE,
                            help=f"How far each probe is moved from its stored embedding (default {DEFAULT_NOISE}).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", dest="as_json", help="One line of JSON instead of words.")

    def handle(self, *args, sample, noise, seed, as_json: bool, **options):
        if sample < 1:
            raise CommandError("--sample must be at least 1.")
        try:
            version = ModelVersion.objects.active()
        except ModelVersion.DoesNotExist as error:
            raise CommandError(str(error)) from None
        result = measure(version, sample, noise, seed)
        if as_json:
            self.stdout.write(json.dumps(result))
            return
        if result["sample"] == 0:
            self.stdout.write(f"Nobody is enrolled under the active model version {version.name}: no searchable "
                              "templates, nothing to check.")
            return
        self.stdout.write(
            f"{result['sample']} of {result['searchable_templates']} searchable templates of {version.name} "
            f"searched (each moved {noise:g}), the HNSW index against exact search:\n"
            f"  recall@1  {result['recall_at_1']:.4f}\n"
            f"  recall@10 {result['recall_at_10']:.4f}\n"
            f"  median search {result['index_ms_median']:.2f} ms with the index, "
            f"{result['exact_ms_median']:.2f} ms exact\n"
            f"  hnsw.ef_search {result['ef_search']}, hnsw.iterative_scan {result['iterative_scan']}, "
            f"hnsw.max_scan_tuples {result['max_scan_tuples']}"
        )

