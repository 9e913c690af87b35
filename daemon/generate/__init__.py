"""Generation: turn a source into :class:`~vault_tools.models.VideoContent`.

Runs inside pool worker processes. Nothing here touches the vault or the ledger.
"""
