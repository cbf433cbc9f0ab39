"""The one exception root of vaultops and its tree.

    VaultOpsError                  exit 1 unless a subclass says otherwise
    ├── UsageError                 bad flags or input on the command line        (exit 2)
    │   ├── ConfigError            vaultops.yaml invalid: names file, key, problem
    │   └── ShareFormatError       a share that cannot be decoded (nothing sent)
    │       └── ShareWordError     a mnemonic word not in the SLIP-39 list
    ├── SecurityError              refused for safety (plain http, wrong share)  (exit 3)
    │   └── ShareMismatchError     a share that does not match the manifest
    ├── VaultError                 an answer from Vault/OpenBao                  (exit 4)
    │   ├── VaultUnreachable       connect/read failure, TLS failure, timeout
    │   ├── VaultBadResponse       non-JSON or unexpected answer (a proxy?)
    │   ├── VaultAuthError         401/403: token missing, expired or too weak
    │   ├── VaultNotFound          404: path unsupported on this server/storage
    │   ├── VaultSealed            503 sealed
    │   └── VaultStandby           429 / 'not active' answers
    ├── DriverError                a node driver failed (carries its Result)     (exit 5)
    ├── BackupError                snapshot, sink, retention failures            (exit 6)
    │   └── VerificationError      a snapshot that failed verification
    ├── DNSError / AcmeError       DNS-01 and ACME failures                      (exit 7)
    ├── RunbookError               a runbook step halted (carries its evidence)  (exit 8)
    │   ├── RunbookPaused          stopped on purpose, waits for people
    │   └── ProbeFailed            a mixed-version probe failed (request, node, versions, error)
    ├── JournalError               the journal is broken or tampered with        (exit 9)
    └── SandboxError               the local sandbox could not start/stop        (exit 10)

Every message says what to do next.
"""

from __future__ import annotations

from typing import Any


class VaultOpsError(Exception):
    """Root of every error vaultops raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(VaultOpsError):
    exit_code = 2


class ConfigError(UsageError):
    pass


class ShareFormatError(UsageError):
    pass


class SecurityError(VaultOpsError):
    exit_code = 3


class ShareMismatchError(SecurityError):
    pass


class VaultError(VaultOpsError):
    exit_code = 4

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None,
                 node: str | None = None) -> None:
        self.status = status
        self.node = node
        super().__init__(message, hint=hint)


class VaultUnreachable(VaultError):
    pass


class VaultBadResponse(VaultError):
    pass


class VaultAuthError(VaultError):
    pass


class VaultNotFound(VaultError):
    pass


class VaultSealed(VaultError):
    pass


class VaultStandby(VaultError):
    pass


class DriverError(VaultOpsError):
    exit_code = 5

    def __init__(self, message: str, *, hint: str | None = None, result: Any = None) -> None:
        self.result = result
        super().__init__(message, hint=hint)


class BackupError(VaultOpsError):
    exit_code = 6


class VerificationError(BackupError):
    pass


class DNSError(VaultOpsError):
    exit_code = 7


class AcmeError(VaultOpsError):
    exit_code = 7


class RunbookError(VaultOpsError):
    exit_code = 8

    def __init__(self, message: str, *, hint: str | None = None, evidence: Any = None) -> None:
        self.evidence = evidence
        super().__init__(message, hint=hint)


class JournalError(VaultOpsError):
    exit_code = 9


class SandboxError(VaultOpsError):
    exit_code = 10


class ShareWordError(ShareFormatError):
    """A mnemonic word that is not in the SLIP-39 wordlist.

    Carries the word's 1-based `position` and the nearest SLIP-39 words as
    `suggestions` for an interactive prompt to show beside the input. The
    message itself never quotes them: they are (nearly) share material.
    """

    def __init__(self, message: str, *, hint: str | None = None, position: int,
                 suggestions: tuple[str, ...] = ()) -> None:
        self.position = position
        self.suggestions = suggestions
        super().__init__(message, hint=hint)


class RunbookPaused(RunbookError):
    """A runbook stopped on purpose and waits for people (e.g. keyholders' shares); resume continues."""


class ProbeFailed(RunbookError):
    """A mixed-version probe (services/upgrade/probes.py) failed: the cluster does not work across versions.

    Carries what an automatic rollback needs to decide and to report: `request` (method and path
    sent), `node` (it went through), `versions` (node name -> version, the active node's included),
    `error` (what came back). `evidence` holds the same plus the probe's timings.
    """

    def __init__(self, message: str, *, hint: str | None = None, request: str, node: str,
                 versions: dict[str, str], error: str, evidence: Any = None) -> None:
        self.request, self.node, self.versions, self.error = request, node, dict(versions), error
        base = {"request": request, "node": node, "versions": dict(versions), "error": error}
        super().__init__(message, hint=hint, evidence={**base, **(evidence or {})})
