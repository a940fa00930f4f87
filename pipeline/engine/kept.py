"""What stays in scratch from one pass to the next.

A pass that computes something a later pass needs again writes it to scratch, one file
per block, when it fits the scratch budget (see :mod:`pipeline.engine.scratch`):

- ``blocks``: every block of a computed image (the Gaussian a threshold is taken of);
- ``local``: the local labels of a labelling (and, for integer inputs, its values);
- ``stand_ins``: a global op's stand-in for its input (the histogram's bin codes);
- ``halos``: the source's halo files (each block with the slabs its neighbours need),
  when a later pass computes an image again from them.

Later passes read the files instead of computing again; :class:`Kept` says which files
there are, reserves their room, and deletes them once no pass reads them again.
"""

from __future__ import annotations

from pipeline.engine.scratch import Scratch
from pipeline.kernels.reduction import StandIn


def halo_slot(name: str, margin: tuple[int, ...]) -> str:
    """The scratch slot of ``name``'s halo files for ``margin``."""
    return f"halo-{name}-{'_'.join(map(str, margin))}"


def stand_in_slot(name: str) -> str:
    """The scratch slot of global op ``name``'s stand-in."""
    return "standin-" + name


class Kept:
    """The files scratch keeps between passes, by what they hold."""

    def __init__(self, scratch: Scratch) -> None:
        self.scratch = scratch
        self.blocks: set[str] = set()  # nodes (and stand-in slots) whose blocks are files
        self.local: set[str] = set()  # labellings whose local labels are files
        self.stand_ins: dict[str, tuple[str, StandIn]] = {}  # global op -> its slot, kind
        self.halos: set[str] = set()  # halo slots kept for later passes

    def reserve(self, what: str, nbytes: int) -> bool:
        """Whether ``what`` (``nbytes`` in all) may be kept; if so, its room is taken."""
        return self.scratch.reserve(what, nbytes)

    def block_path(self, name: str, index: tuple[int, ...]) -> str:
        """File of block ``index`` of ``name``."""
        return self.scratch.path(name, index)

    def local_paths(self, name: str, index: tuple[int, ...]) -> tuple[str, str]:
        """Files of block ``index``'s local labels of labelling ``name``, and its values."""
        return self.scratch.path("local-" + name, index), self.scratch.path("values-" + name, index)

    def stand_in(self, name: str) -> tuple[str, StandIn] | None:
        """Global op ``name``'s kept stand-in (its slot and kind), where there is one."""
        kept = self.stand_ins.get(name)
        return kept if kept is not None and kept[0] in self.blocks else None

    def keep_stand_in(self, name: str, slot: str, stand_in: StandIn) -> None:
        """Record that a pass kept ``slot``, global op ``name``'s stand-in."""
        self.blocks.add(slot)
        self.stand_ins[name] = (slot, stand_in)

    def make_room(self, nbytes: int) -> None:
        """Give kept halo files' room to ``nbytes`` of something sparing more, when that
        makes it fit."""
        halos = sum(self.scratch.reserved(slot) for slot in self.halos)
        if halos and self.scratch.room() < nbytes <= self.scratch.room() + halos:
            for slot in sorted(self.halos):
                self.drop_halos(slot)

    def keep_halos(self, slots: dict[str, int]) -> None:
        """Keep each halo slot of ``slots`` (slot -> bytes) whose files all fit the budget."""
        for slot, nbytes in sorted(slots.items()):
            if slot not in self.halos and self.scratch.reserve(slot, nbytes):
                self.halos.add(slot)

    def drop_halos(self, slot: str) -> None:
        """Delete the kept halo files of ``slot`` (in the background) and free their room."""
        self.halos.discard(slot)
        self.scratch.drop_later(slot)

    def drop_unused_halos(self, used: set[str]) -> None:
        """Delete the kept halo files a pass neither reads nor writes (``used``): no later
        pass computes their image again."""
        for slot in sorted(self.halos - used):
            self.drop_halos(slot)

    def drop_unread(self, read: set[str]) -> None:
        """Delete, in the background, what the last pass does not read (``read``: its
        kept blocks' names and ``local-`` names of the local labels it reads)."""
        for name in sorted(self.blocks - read):
            self.blocks.discard(name)
            self.scratch.drop_later(name)
        for name in sorted(self.local):
            if "local-" + name not in read:
                self.local.discard(name)
                self.scratch.drop_later("local-" + name)
                self.scratch.drop_later("values-" + name)

    def forget(self) -> None:
        """Forget every kept file (the scratch folder is removed or kept for a resume)."""
        self.blocks.clear()
        self.local.clear()
        self.stand_ins.clear()
        self.halos.clear()
