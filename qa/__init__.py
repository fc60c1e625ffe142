"""qa: semantic question answering over your own documents, every answer a cited passage."""

__version__ = "0.1.0"
