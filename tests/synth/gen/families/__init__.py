"""Tests of synth/gen/families/ (test modules mirror the package layout)."""
