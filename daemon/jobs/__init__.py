"""The durable queue: the ledger, the job record and its schema, the dispatcher.

Owns ``ledger`` (the state machine, one SQLite row per source), ``job`` (the row's
shape, schema upgrades) and ``dispatcher`` (claims ready jobs, runs them in the process
pool, commits results before the writer runs). May import ``generate``, ``sources`` and
the shared modules; never ``writer``, ``service`` or ``cli``.
"""
