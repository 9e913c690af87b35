"""Generation: turn a source into :class:`~vault_tools.models.VideoContent`.

Runs inside pool worker processes. Nothing here touches the vault or the ledger.

Pure: may import ``sources``, ``vault_tools`` and the shared modules (``config``,
``errors``, ``logs``, ``paths``, secrets); never ``writer``, ``jobs``, ``service`` or
``cli``.
"""
