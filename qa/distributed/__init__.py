"""Beyond one machine: indexing on Ray Data, serving replicas on Ray Serve, and shards."""
