"""Tests of infra/ (test modules mirror the package layout)."""
