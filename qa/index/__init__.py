"""An index on disk: its stores behind small interfaces, manifest, segments, atomic swap, the indexer."""
