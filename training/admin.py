from django.contrib import admin

from training.models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "threshold", "mirror", "alignment", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "notes")
    # A version's file, digest and alignment define the embeddings stored under it: never edited.
    readonly_fields = ("name", "file", "sha256", "parent", "embedding_size", "alignment", "mirror",
                       "threshold_source", "metrics", "is_active", "created_at")
    fields = readonly_fields[:9] + ("threshold", "notes") + readonly_fields[9:]

    def has_add_permission(self, request):
        return False  # versions come from import_base_model and training runs
