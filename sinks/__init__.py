"""Storage for shards and commits: a small Sink protocol, local and S3 implementations,
the zstd shard writer, and readers. Knows nothing of kernels or Warp."""
