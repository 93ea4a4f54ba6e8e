"""The `jitsynth` command line: `app` (run, sample, read, verify) and one thin module per command group
that registers itself on it."""
