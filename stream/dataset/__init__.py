"""Operations on a committed dataset: stats, card and plots, verify, export (per-sample, Parquet),
cross-producer and near-duplicate passes."""
