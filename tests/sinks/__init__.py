"""Tests of sinks/ (test modules mirror the package layout)."""
