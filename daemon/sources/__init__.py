"""Sources: fetch transcripts and metadata (YouTube) for worker processes.

Pure: may import ``vault_tools`` and the shared modules (``config``, ``errors``,
``logs``, ``paths``, secrets); never ``generate``, ``writer``, ``jobs``, ``service`` or
``cli``.
"""
