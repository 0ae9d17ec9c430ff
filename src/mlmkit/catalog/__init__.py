"""Verbs over whole catalogs: validate, publish, search, merge, and the provenance links they keep true."""
