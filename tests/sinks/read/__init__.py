"""Tests of sinks/read/ (test modules mirror the package layout)."""
