"""Kernel families besides the plain one (synth.generator.FAMILY_MODULES)."""
