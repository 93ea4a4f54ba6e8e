"""Tests of synth/variants/ (test modules mirror the package layout)."""
