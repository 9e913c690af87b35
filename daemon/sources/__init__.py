"""Sources: fetch transcripts and metadata (YouTube) for worker processes."""
