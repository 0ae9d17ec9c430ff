"""STAC documents and where they live: reading, writing, schemas, object stores, downloads, safe names, all-or-nothing output."""
