"""synthrank: dense retrievers trained on LLM-written graded passages with list-wise losses."""

__version__ = "0.1.0"
