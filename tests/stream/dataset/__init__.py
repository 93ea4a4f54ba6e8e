"""Tests of stream/dataset/ (test modules mirror the package layout)."""
