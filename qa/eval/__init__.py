"""`qa eval`: labelled datasets and ranking metrics."""
