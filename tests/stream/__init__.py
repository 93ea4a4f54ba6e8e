"""Tests of stream/ (test modules mirror the package layout)."""
