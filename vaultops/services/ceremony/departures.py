"""Keyholder departures, as the keyholder manifest records them.

A departure says a person is gone: whatever share they held, of any key epoch, counts as lost.
A rekey that drops a keyholder is not a departure (they may keep their old share sealed for the
backups of the old epoch); `vaultops keyholders depart NAME` records one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from msgspec import Meta

from vaultops.files.model import Model


@dataclass(frozen=True)
class Departure:
    name: str
    left: date
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "left": self.left} | ({"note": self.note} if self.note else {})


class DepartureEntry(Model, kw_only=True):
    name: Annotated[str, Meta(description="the keyholder who left")]
    left: Annotated[date, Meta(description="when they left (YYYY-MM-DD)")]
    note: Annotated[Annotated[str, Meta(max_length=200)] | None, Meta(description="why, for people (optional)")] = None

    def __post_init__(self) -> None:
        from vaultops.services.ceremony.manifest import check_holder_name

        check_holder_name(self.name, "name")

    def departure(self) -> Departure:
        return Departure(self.name, self.left, self.note)
