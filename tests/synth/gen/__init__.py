"""Tests of synth/gen/ (test modules mirror the package layout)."""
