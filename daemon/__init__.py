"""vaultd's service code, in rooms by stage (see docs/architecture.md).

``cli/`` the face; ``service/`` the process; ``jobs/`` the durable queue; ``writer/``
the only code that changes the vault; ``generate/`` and ``sources/`` pure work that runs
in pool workers; ``config``, ``errors``, ``logs``, ``paths`` and the secrets module
shared by all. A room imports only rooms below it; the contracts are in pyproject.toml
(``lint-imports``).
"""
