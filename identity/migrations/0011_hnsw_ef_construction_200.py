# The HNSW index built again with ef_construction 200 (was 64): see identity.models.FaceTemplate.
#
# On a large gallery the build takes a while (about 10 minutes at 1M faces on 2 cores, with
# maintenance_work_mem 2GB; docs/DEPLOY.md). So the new index is built CONCURRENTLY beside the old
# one, under a name of its own, and only then does it replace the old one: the table is never
# locked, and kiosks keep searching the old index, not scanning the table, while the build runs.
# Both indexes are on disk for those minutes. A build that fails (or is stopped) leaves an invalid
# index under the new name; running the migration again drops it first.

import pgvector.django.indexes
from django.db import migrations

TABLE = '"identity_facetemplate"'
INDEX = "facetemplate_embedding_hnsw"
BUILDING = "facetemplate_embedding_hnsw_building"


def build(ef_construction):
    """The statements that replace the index with one built with this ef_construction."""
    return [
        f"DROP INDEX CONCURRENTLY IF EXISTS {BUILDING}",
        f"CREATE INDEX CONCURRENTLY {BUILDING} ON {TABLE} USING hnsw (embedding vector_l2_ops)"
        f" WITH (m = 16, ef_construction = {ef_construction})",
        f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}",
        f"ALTER INDEX {BUILDING} RENAME TO {INDEX}",
    ]


def hnsw(ef_construction):
    return pgvector.django.indexes.HnswIndex(
        ef_construction=ef_construction,
        fields=["embedding"],
        m=16,
        name=INDEX,
        opclasses=["vector_l2_ops"],
    )


class Migration(migrations.Migration):
    atomic = False  # CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ('identity', '0010_liveness_reason_default'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(build(200), reverse_sql=build(64)),
            ],
            state_operations=[
                migrations.RemoveIndex(model_name="facetemplate", name=INDEX),
                migrations.AddIndex(model_name="facetemplate", index=hnsw(200)),
            ],
        ),
    ]
