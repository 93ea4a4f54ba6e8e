"""The variants source: seeded expression-, statement- and type-level mutations of real kernels."""
