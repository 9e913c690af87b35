"""The one exception tree of vaultd. Retries are decided by type, never by message.

    VaultdError
    ├── ConfigError          bad or unknown setting; names it; CLI exit code 2
    ├── VaultMissingError    vault folder absent or not a directory; exit code 2
    └── JobError             something went wrong with one job; carries ``reason``
        ├── TransientError   retry with exponential backoff and jitter (job "waiting")
        │   ├── NetworkError         timeouts, resets, 5xx, a worker process died
        │   │   └── OfflineError     no connection at all (DNS, refused, proxy down):
        │   │                        the daemon waits for the network without using
        │   │                        up attempts; ``run --once`` counts them and ends
        │   ├── RateLimitedError     HTTP 429 / YouTube "too many requests"; ``retry_after``
        │   ├── IpBlockedError       YouTube blocks this IP (recaptcha, RequestBlocked)
        │   ├── ServiceOverloadedError  HTTP 529 / 5xx from the model API
        │   ├── BudgetExhaustedError    daily token budget reached: wait, never fail
        │   └── VaultWriteError      disk full, permission, vault gone: old files intact
        └── PermanentError   fail the job with a plain reason; ``vaultd retry`` re-queues
            ├── InvalidSourceError      malformed video id, unsupported source
            ├── SourceNotFoundError     subtitle file missing or unreadable
            ├── TranscriptUnavailableError  disabled, none found, video unavailable,
            │                               unplayable, age restricted, PO token needed
            ├── EmptyTranscriptError    nothing (or almost nothing) to study from
            ├── MalformedReplyError     the model replied empty or unparsable twice
            └── PathRefusedError    the path gate refused a vault path (outside the
                                    vault, a symlink out, a FIFO/device, too large):
                                    also a ``vault_tools.pathgate.PathRefused``

Every error carries ``reason``: one plain sentence that goes on the inbox line and into
``vaultd status``, and may carry ``usage`` (tokens already billed when it happened, so
the ledger accounts for them). Errors cross the process-pool boundary, so they pickle
by ``(reason, retry_after, usage)``.
"""

from __future__ import annotations

from vault_tools.pathgate import PathRefused


class VaultdError(Exception):
    """Root of every error vaultd raises on purpose."""


class ConfigError(VaultdError):
    """A setting is unknown or has a bad value. The message names the setting."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"config: {setting}: {problem}")

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.setting, self.problem))


class VaultMissingError(VaultdError):
    """The vault folder is not there (or is not a folder)."""


class JobError(VaultdError):
    """Failure of one job. ``reason`` is what the user reads."""

    transient: bool = False

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.usage: object | None = None  # tokens billed before the failure (Usage)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild, (type(self), self.reason, self.retry_after, self.usage))


def _rebuild(cls: type[JobError], reason: str, retry_after: float | None,
             usage: object | None = None) -> JobError:
    err = cls(reason, retry_after=retry_after)
    err.usage = usage
    return err


class TransientError(JobError):
    transient = True


class NetworkError(TransientError):
    pass


class OfflineError(NetworkError):
    """No connection could be made: this computer is probably offline. A running
    daemon keeps such jobs waiting (backoff up to ``daemon.backoff_max_seconds``) until
    the network is back, however long that takes; only ``run --once`` gives up."""


class RateLimitedError(TransientError):
    pass


class IpBlockedError(TransientError):
    pass


class ServiceOverloadedError(TransientError):
    pass


class BudgetExhaustedError(TransientError):
    pass


class VaultWriteError(TransientError):
    pass


class PermanentError(JobError):
    transient = False


class InvalidSourceError(PermanentError):
    pass


class SourceNotFoundError(PermanentError):
    pass


class TranscriptUnavailableError(PermanentError):
    pass


class EmptyTranscriptError(PermanentError):
    pass


class MalformedReplyError(PermanentError):
    pass


class NeedsTranscriptionError(PermanentError):
    """The source has no usable text until its audio is transcribed.

    Raised by a generation worker; the dispatcher routes the job to the transcription
    pool instead of failing it (the reason is what the user reads if it cannot).
    """


class PathRefusedError(PermanentError, PathRefused):
    """The path gate (:mod:`vault_tools.pathgate`) refused a vault path. Raised by the
    gate as the pure ``PathRefused``; daemon code turns it into this permanent job error
    with :meth:`from_gate` (the reason is kept word for word)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        PermanentError.__init__(self, reason, retry_after=retry_after)

    @classmethod
    def from_gate(cls, exc: PathRefused) -> PathRefusedError:
        return exc if isinstance(exc, cls) else cls(exc.reason)
