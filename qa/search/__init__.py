"""Answering questions: retrieval, fusion, re-ranking, highlights, confidence, the service core."""
