"""Tests of synth/ (test modules mirror the package layout)."""
