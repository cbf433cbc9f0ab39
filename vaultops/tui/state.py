"""TUI state: plain dataclasses that key handlers change and layouts read.

AppState is the console shell (which screen is shown); each screen keeps its
own state object (UnsealState for the unseal ceremony). No prompt_toolkit and
no share material here: the hidden input lives only in its Buffer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from vaultops.services.ceremony.types import CeremonySnapshot

LOG_LIMIT = 200


@dataclass
class AppState:
    title: str = "vaultops"
    screen: str = ""                                  # name of the screen shown
    screens: list[str] = field(default_factory=list)  # registry order (F1, F2, ...)
    status: str = ""                                  # one line under the header


class UnsealStage(enum.Enum):
    PICK = "pick"                  # choose a keyholder
    SHARE = "share"                # hidden share entry
    PASSPHRASE = "passphrase"      # hidden mnemonic passphrase entry
    CONFIRM_RESET = "confirm-reset"
    CONFIRM_LEAVE = "confirm-leave"  # Ctrl-C while shares are in flight


@dataclass
class LogLine:
    level: str  # info | warn | error
    text: str


@dataclass
class UnsealState:
    keyholders: list[str]
    checked: bool = True
    selected: int = 0
    stage: UnsealStage = UnsealStage.PICK
    snapshot: CeremonySnapshot | None = None
    log: list[LogLine] = field(default_factory=list)
    error: str = ""
    suggestions: tuple[str, ...] = ()
    hint: str = ""
    busy: str = ""             # what runs in the background ("" = idle)
    submissions: int = 0       # effects, for tests and the footer
    resets: int = 0
    interrupted: bool = False  # left with Ctrl-C: the command exits 130

    @property
    def keyholder(self) -> str:
        return self.keyholders[self.selected] if self.keyholders else ""

    def move(self, step: int) -> None:
        if self.keyholders:
            self.selected = (self.selected + step) % len(self.keyholders)

    def add_log(self, level: str, text: str) -> None:
        self.log.append(LogLine(level, text))
        del self.log[:-LOG_LIMIT]
