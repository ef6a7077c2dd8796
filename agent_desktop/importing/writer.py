"""Turning drafts into rows: create a customer, or merge into an existing one.

New customers (with their numbers, tags and notes) are collected per batch and written by
Core `executemany` with their outbox rows (`core_rows.CoreBatch`, ~2.5x less CPU than ORM
objects); merges load the target through the ORM and let its outbox hook record them.

Merging follows what an agent expects from "merge": fill fields that are empty, add the
phone numbers, tags and notes the customer does not have yet; never overwrite a
value someone typed. When the file disagrees with a filled field the existing value stays
and the report says so, so nothing in the file is lost without a word. A do-not-call flag
from the file is always applied: missing it could mean calling someone who asked not to be.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, selectinload

from agent_desktop.importing.core_rows import CoreBatch
from agent_desktop.importing.indexing import triggers_suspended
from agent_desktop.importing.mapping import CustomerDraft, PhoneDraft
from agent_desktop.importing.results import DuplicateAction, DuplicateGroup, RowProblem
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.models import Customer, Note, PhoneNumber, Tag

# Values that count as "empty" when filling: the defaults a new customer gets.
_EMPTY_DEFAULTS = {"status": "new", "stage": "lead"}


def _phone_row(p: PhoneDraft, position: int, customer_id: int) -> PhoneNumber:
    n = p.normalized
    return PhoneNumber(customer_id=customer_id, label=p.label, raw=p.raw, e164=n.e164,
                       rev_digits=n.rev_digits, valid=n.valid, position=position)


def _phone_key(e164: str | None, rev_digits: str, raw: str) -> str:
    return e164 or rev_digits or raw


class _IdBlock:
    """Primary keys handed out by us for one transaction.

    Why: SQLAlchemy's ORM on SQLite cannot batch INSERTs whose keys the database assigns
    (it needs RETURNING in a guaranteed order and SQLite offers no sentinel), so it sends one
    INSERT per row. With keys known up front it uses executemany, several times faster.
    The keys are safe because a no-op DELETE first takes SQLite's write lock: no other
    writer can insert until this transaction ends.
    """

    KEY = "import_id_block"
    _TABLES = (Customer, PhoneNumber, Tag, Note)

    def __init__(self, s: Session) -> None:
        s.execute(text("DELETE FROM customers WHERE 0"))  # take the write lock now
        self._next: dict[type, int] = {}
        for model in self._TABLES:
            top = s.scalar(select(func.max(model.id)))
            self._next[model] = (top or 0) + 1

    def peek(self, model: type) -> int:
        return self._next[model]

    def next(self, model: type) -> int:
        value = self._next[model]
        self._next[model] = value + 1
        return value


class BatchWriter:
    """Creates and merges customers; remembers where each duplicate group went so that
    later rows of the same group (maybe in a later batch) merge into the same customer.

    New customers get their ids at once from the transaction's id block and are written
    together by `finish()` through Core (`CoreBatch`, outbox rows included); merges go
    through the ORM after that, so a merge may target a customer created by this batch.
    """

    def __init__(self, normalizer: PhoneNormalizer) -> None:
        self._normalizer = normalizer
        self._targets: dict[int, int] = {}  # group id → customer id (committed)
        self._pending: dict[int, int] = {}  # group id → customer id of the open batch
        self._core = CoreBatch()
        self._first_id = 0  # id of the first customer in `_core`
        self._deferred: list[tuple[int, CustomerDraft, list[RowProblem]]] = []

    def commit_pending(self) -> None:
        self._targets.update(self._pending)
        self._pending.clear()

    def forget_pending(self) -> None:
        self._pending.clear()
        self._core = CoreBatch()
        self._deferred.clear()

    def create(self, s: Session, draft: CustomerDraft) -> int:
        """Queue a new customer with its phones, tags and note; returns its id."""
        ids = self._ids(s)
        cid = ids.next(Customer)
        if not len(self._core):
            self._first_id = cid
        core = self._core
        now = core.now
        core.customers.add({"id": cid, "name": draft.name, "name_key": draft.name_key,
                            **draft.fields}, now)
        for i, p in enumerate(draft.phones):
            n = p.normalized
            core.phones.add({"id": ids.next(PhoneNumber), "customer_id": cid,
                             "label": p.label, "raw": p.raw, "e164": n.e164,
                             "rev_digits": n.rev_digits, "valid": n.valid, "position": i}, now)
        for t in draft.tags:
            core.tags.add({"id": ids.next(Tag), "customer_id": cid, "name": t}, now)
        for body in draft.notes:
            core.notes.add({"id": ids.next(Note), "customer_id": cid, "body": body,
                            "author": "import"}, now)
        return cid

    def _ids(self, s: Session) -> _IdBlock:
        block = s.info.get(_IdBlock.KEY)
        if block is None:
            block = s.info[_IdBlock.KEY] = _IdBlock(s)
        return block

    def _live(self, s: Session, cid: int) -> Customer | None:
        found = s.get(Customer, cid)
        return found if found is not None and found.deleted_at is None else None

    def apply(self, s: Session, draft: CustomerDraft, group: DuplicateGroup,
              warnings: list[RowProblem]) -> str:
        """Handle a row of a duplicate group; returns "new", "merged" or "skipped"."""
        first_in_file = draft.line == group.lines[0]
        if group.action is DuplicateAction.NEW:
            self.create(s, draft)
            return "new"
        if group.action is DuplicateAction.SKIP:
            if group.existing or not first_in_file:
                return "skipped"
            self.create(s, draft)
            return "new"
        # MERGE
        if group.id not in self._targets and group.id not in self._pending and group.existing:
            self._targets[group.id] = group.existing[0].customer_id
            if len(group.existing) > 1:
                others = ", ".join(f"“{m.name}”" for m in group.existing[1:])
                warnings.append(RowProblem(draft.line, "warning",
                                           f"also matches {others}; merged into "
                                           f"“{group.existing[0].name}” only"))
        target = self._pending.get(group.id)
        if target is None and group.id in self._targets:
            committed = self._targets[group.id]
            if self._live(s, committed) is not None:
                target = committed
            else:
                warnings.append(RowProblem(draft.line, "warning",
                                           "the customer to merge into no longer exists; "
                                           "imported as a new customer"))
                del self._targets[group.id]
        if target is None:
            self._pending[group.id] = self.create(s, draft)
            return "new"
        # Merged after the batch's new customers are inserted in one block (`finish`):
        # merging at once would split that block at every duplicate.
        self._deferred.append((target, draft, warnings))
        return "merged"

    def finish(self, s: Session) -> None:
        """End of a batch: insert the queued customers, then apply the merges in order.

        Both happen with the search triggers suspended (for a batch big enough): each
        merge used to flush its phones and tags under the triggers, re-indexing its
        customer two or three times (~5 ms a merge). The existing customers merged into
        are re-indexed once each afterwards, by the triggers themselves
        (`indexing.triggers_suspended(touched=...)`); the merge targets and their
        numbers, tags and notes are loaded in three queries for the whole batch instead
        of four per merge. The block of new ids is contiguous (ids are handed out at
        `create`, merges only take phone/tag/note ids), so the search index is filled for
        it in one pass, inside this transaction.
        """
        count, merges = len(self._core), self._deferred
        if not count and not merges:
            return
        s.flush()  # edits made so far, while the search triggers are in place
        # Ids from `_first_id` on are this batch's new customers, indexed as a block.
        touched = {cid for cid, _d, _w in merges if not count or cid < self._first_id}
        with triggers_suspended(s, self._first_id, count, touched):
            if count:
                self._core.flush(s)
            if merges:
                # Held here: the session's identity map keeps unmodified objects only
                # while something else refers to them.
                loaded = self._load(s, {cid for cid, _d, _w in merges})
                # No autoflush: a query would flush the previous merge's rows one by one.
                with s.no_autoflush:
                    for cid, draft, warnings in merges:
                        target = self._live(s, cid)
                        if target is None:  # deleted by an earlier merge? never silently
                            raise RuntimeError(f"line {draft.line}: customer {cid} to merge "
                                               "into vanished")
                        self._merge(s, target, draft, warnings)
                del loaded
        self._deferred.clear()

    @staticmethod
    def _load(s: Session, ids: set[int]) -> list[Customer]:
        """Customers with their numbers, tags and notes into the session's identity map."""
        return list(s.scalars(select(Customer).where(Customer.id.in_(ids))
                  .options(selectinload(Customer.phones), selectinload(Customer.tags),
                           selectinload(Customer.notes))))

    def _merge(self, s: Session, c: Customer, draft: CustomerDraft,
               warnings: list[RowProblem]) -> None:
        ids = self._ids(s)  # every row this transaction inserts takes its key from the block
        kept: list[str] = []
        for key, value in draft.fields.items():
            current = getattr(c, key)
            if key == "do_not_call":
                if value and not current:
                    c.do_not_call = True
                continue
            if current in ("", None, _EMPTY_DEFAULTS.get(key)):
                setattr(c, key, value)
            elif current != value:
                kept.append(f"{key} “{current}” (file: “{value}”)")
        if c.name != draft.name:
            kept.append(f"name “{c.name}” (file: “{draft.name}”)")
        if kept:
            warnings.append(RowProblem(draft.line, "warning",
                                       f"merged into “{c.name}”, keeping its " +
                                       "; ".join(kept)))
        live_phones = [p for p in c.phones if p.deleted_at is None]
        have = {_phone_key(p.e164, p.rev_digits, p.raw) for p in live_phones}
        position = max((p.position for p in live_phones), default=-1) + 1
        for p in draft.phones:
            key = _phone_key(p.normalized.e164, p.normalized.rev_digits, p.raw)
            if key not in have:
                have.add(key)
                row = _phone_row(p, position, c.id)
                row.id = ids.next(PhoneNumber)
                c.phones.append(row)
                position += 1
        tags = {t.name.casefold() for t in c.tags if t.deleted_at is None}
        for t in draft.tags:
            if t.casefold() not in tags:
                tags.add(t.casefold())
                c.tags.append(Tag(id=ids.next(Tag), name=t))
        bodies = {n.body for n in c.notes if n.deleted_at is None}
        for body in draft.notes:
            if body not in bodies:
                bodies.add(body)
                c.notes.append(Note(id=ids.next(Note), body=body, author="import"))
