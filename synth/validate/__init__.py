"""Validation tiers beyond codegen: PTX, CPU compile, sandboxed execution with seeded examples and
objects, CUDA vs CPU."""
