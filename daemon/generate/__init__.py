"""Generation: turn a source into :class:`~vault_tools.models.VideoContent`.

Runs inside pool worker processes. Owns the ``Backend`` seam (``base``), the pool entry
(``worker``), the offline generator, the model backend with its tasks, prompts and reply
reader, and the transports (Claude, Message Batches, OpenAI-compatible). Nothing here
touches the vault or the ledger.

Pure: may import ``sources``, ``vault_tools`` and the shared modules (``config``,
``errors``, ``logs``, ``paths``, ``secrets``); never ``writer``, ``jobs``, ``service`` or
``cli`` (import-linter).
"""
