"""Reading a dataset: commit-driven reader, checked shard streaming, training reader and its
assignment, splits, --where, dedup files, HF options."""
