"""Tests of stream/bench/ (test modules mirror the package layout)."""
