"""The durable queue: the ledger, the job record, the dispatcher and the pools' plumbing.

Owns ``ledger`` (the state machine, one SQLite row per source), ``job`` (the row's shape,
schema upgrades), ``ledger_repair`` and ``state_watch`` (a damaged ledger or a faulty
state folder), ``spool`` (results finished during a stop), ``dispatcher`` (claims ready
jobs, runs them in the process pool, commits results before the writer runs),
``transcription_pool``, and how pool workers start and die (``warm_start``,
``orphans``) -- here because both the dispatcher's pool and the writer's PDF pool use them.

May import ``generate``, ``sources``, ``vault_tools`` and the shared modules; never
``writer``, ``service`` or ``cli``.
"""
