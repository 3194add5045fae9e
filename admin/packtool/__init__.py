"""`tailor pack …`: the consultant's tools for a client pack — scaffold it, test it with scenarios on a fake clock, build a
versioned archive, install or upgrade it into an installation's configuration releases (a dry run first), compare two
versions, merge an upgraded base under the client's overlays.

One module per thing it owns: `bases` (the packs a pack stands on), `scaffold` (`pack new`), `runner` and `coverage`
(`pack test`), `archive` (`pack build` and reading archives back), `changes` (what differs between two models, in
words), `merge` (the 3-way merge of an upgrade), `install` (the plan and its application to the releases).
"""
from __future__ import annotations

from engine.errors import TailorError


class PackError(TailorError):
    """A pack tool refused: the message says what and why, in words a consultant can act on."""
