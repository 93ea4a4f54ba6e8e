"""Tests of stream/cli/ (test modules mirror the package layout)."""
