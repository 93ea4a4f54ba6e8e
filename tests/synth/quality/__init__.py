"""Tests of synth/quality/ (test modules mirror the package layout)."""
