"""The random generator, a pure function of (seed, config): expressions, statements, signatures,
guards, pruning, calibration, config, report."""
