"""Real kernels in (`jitsynth ingest`): discovery without importing, loading in workers, hoisting,
composing a kernel's source."""
