"""Kernel quality from source text alone: module facts, liveness, races, the quality rules, corpus
realism."""
