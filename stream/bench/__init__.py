"""`jitsynth bench`: the pipeline against the codegen ceiling, the main process at capacity, parts
without a pipeline, the commit-log scale simulation."""
