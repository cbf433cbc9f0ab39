"""The generate-root ceremony screen: the rekey screen's board and hidden entry, then the token once.

The attempt (and its OTP, in memory only) starts when the screen opens; it is
cancelled if the screen closes before the threshold. The decoded token is
shown once in the full-screen view (gone from the terminal when the screen
closes) and, with --revoke-after, revoked when the screen closes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vaultops.tui.rekey_screen import Board, make_app

if TYPE_CHECKING:
    from vaultops.services.ceremony.root import Attempt, RootCeremony


class GenerateRootDriver:
    secret_kind = "root token"

    def __init__(self, cer: RootCeremony, *, revoke_after: bool = False) -> None:
        self.cer = cer
        self.revoke_after = revoke_after
        self.title = f"vaultops generate-root - {cer.client.name}"
        self.attempt: Attempt = cer.start()
        self.submitted: list[str] = []
        self.progress = 0
        self.token: str | None = None

    def board(self) -> Board:
        names = [k.name for k in self.cer.manifest.keyholders] if self.cer.manifest else []
        done = self.token is not None
        header: tuple[str, ...] = ("root token generated and shown once; it is stored nowhere" if done else
                  f"{self.attempt.required} keyholders enter their shares (checked before they are sent)",)
        if done and self.revoke_after:
            header += ("it will be REVOKED when you quit (--revoke-after)",)
        rows = tuple((n, "submitted" if n in self.submitted else "waiting") for n in names)
        return Board(header, rows, self.progress, self.attempt.required,
                     tuple(n for n in names if n not in self.submitted) or ("unnamed",), done=done)

    def submit(self, name: str, text: str) -> tuple[str, list[tuple[str, str]]]:
        from vaultops.services.ceremony import shares
        from vaultops.services.ceremony.root import decode_token

        share = shares.decode(text)
        res = self.cer.submit(self.attempt, name, share)
        self.submitted.append(name)
        self.progress = res.progress
        if not res.complete:
            return f"{name}: share #{share.index} accepted ({res.progress}/{res.required})", []
        assert self.attempt.otp is not None
        self.token = decode_token(res.encoded_token, self.attempt.otp)
        policies = ", ".join(self.cer.check_token(self.token).policies)
        return f"root token generated (policies: {policies})", [("the operator", self.token)]

    def close(self) -> list[str]:
        """On quit: cancel an unfinished attempt, or revoke the token if asked."""
        if self.token is None:
            return ["root generation cancelled"] if self.cer.cancel() else []
        if self.revoke_after:
            self.cer.revoke(self.token)
            return ["the new root token was revoked"]
        return []


def run(cer: RootCeremony, *, revoke_after: bool = False) -> int:
    """The screen for *cer* (opened by `vaultops generate-root --tui`), until the operator quits."""
    driver = GenerateRootDriver(cer, revoke_after=revoke_after)
    app, _state = make_app(driver)
    try:
        app.run()
    finally:
        for line in driver.close():
            print(line)
    return 0
