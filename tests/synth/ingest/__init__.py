"""Tests of synth/ingest/ (test modules mirror the package layout)."""
