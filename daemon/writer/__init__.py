"""The only code that changes the vault, and the helpers it drives.

Owns ``vault_writer`` (the writer thread and its command queue), ``inbox_sync`` (inbox
text and ledger jobs), ``note_files`` (naming, composing, regenerating notes),
``vault_knowledge`` (index, linker, related notes), ``graph_keeper`` (knowledge graph,
graph note, canvas), ``pdf/`` (render pool and filing) and ``feeds/`` (followed
channels and playlists). May import ``jobs``, ``sources`` and the shared modules;
never ``service`` or ``cli``.
"""
