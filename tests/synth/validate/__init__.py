"""Tests of synth/validate/ (test modules mirror the package layout)."""
