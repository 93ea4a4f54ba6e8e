"""Kernel families besides the plain one (synth.gen.generator.FAMILY_MODULES)."""
