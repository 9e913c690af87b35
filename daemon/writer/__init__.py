"""The only code that changes the vault, and the helpers it drives.

Owns ``vault_writer`` (the writer thread and its command queue), ``inbox_sync`` (inbox
text and ledger jobs), ``note_files`` (naming, composing, regenerating notes),
``vault_knowledge`` (index, linker, related notes), ``graph_keeper`` (knowledge graph,
graph note, canvas), ``topic_keeper``, ``topic_synthesizer``, ``maintained_notes`` and
``weekly_review`` (topic notes, review notes, the Bases file), ``pdf/`` (render pool and
filing) and ``feeds/`` (followed channels, playlists and podcasts).

May import ``jobs``, ``generate`` (the model transports, for topic synthesis),
``sources``, ``vault_tools`` and the shared modules; never ``service`` or ``cli``
(import-linter).
"""
