"""Admin pages for importing employees in bulk from a zip archive (BulkImport)."""
