"""Which of the servers sharing one store runs the controller, and how the others follow it.

Every server serves the API and queries; the one holding the ``controller`` lease
(`berth.store.leases`) also runs the controller, whose store writes are fenced by the lease's
token (`berth.store.fencing`). The leader renews every ``renew_s``; a server that could not
renew for ``lease_s``, or finds another holder, stops its controller. The others try for the
lease every ``follow_s`` and meanwhile route by the snapshot the leader stores: the leader
writes each snapshot it publishes (external credentials sealed with the shared secret key),
and followers load it into their own bus, from which their gateways (and gateway workers)
route as the leader's do. What their gateways see goes the other way: each follower stores
its load report and the routes version it holds; the leader posts the fresh reports to its
autoscaler's board, and retires a replica once every follower routes past it. The leader also
stores its controller's replica counts (ready, wanted) when they change, and followers load
them, so GET answers ``current_replicas`` alike through every server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Protocol

from berth.controller.load_board import LoadBoard
from berth.controller.sizing import ReplicaCount, Sizing
from berth.core.clock import Clock
from berth.core.dataplane import Snapshot, SnapshotBus
from berth.core.errors import LeaseLost
from berth.core.load import LoadReport, report_from_json, report_to_json
from berth.secrets.sealed_snapshot import SealedSnapshots, open_externals
from berth.settings import LeaderSettings
from berth.store import gateway_loads, leases, scales, snapshots
from berth.store.db import Database
from berth.store.fencing import Fenced, Term
from berth.store.gateway_loads import GatewayLoad

log = logging.getLogger(__name__)

SNAPSHOT_POLL_S = 30.0
LOAD_KEEPALIVE_S = 2.0
"""A follower rewrites an unchanged load report this often, so the leader knows it serves."""
LOAD_STALE_MS = 5_000
"""A load report older than this is a server gone: the leader no longer counts it."""
FOLLOWERS_POLL_S = 0.1


class Controlling(Protocol):
    """What leading means to the controller (`berth.controller.reconciler.Controller`)."""

    async def lead(self) -> None:
        """Adopt what the backend still runs, reconcile once, then loop."""

    async def stop(self) -> None:
        """End the loop and let the backend's replicas go."""

    async def drop_leftovers(self) -> None:
        """Let go of replicas an earlier life of this server left running."""

    @property
    def load(self) -> LoadBoard:
        """The demand this server's gateways see."""

    @property
    def sizing(self) -> Sizing:
        """The replica counts of the last pass: the leader's to share, a follower's to load."""

    def report_load(self, source: str, report: LoadReport) -> None:
        """Demand seen by another server's gateways, for the autoscaler."""


def server_id(path: Path) -> str:
    """This server's id in the lease: made on first start, kept in ``path`` after."""
    if path.exists():
        return path.read_text().strip()
    made = f"{socket.gethostname()}-{uuid.uuid4().hex[:12]}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(made)
    return made


class Leadership:
    def __init__(
        self,
        db: Database,
        fenced: Fenced,
        controller: Controlling,
        bus: SnapshotBus,
        sealed: SealedSnapshots,
        holder: str,
        clock: Clock,
        settings: LeaderSettings,
    ) -> None:
        """``controller`` writes through ``fenced``, whose term this sets as the lease comes
        and goes; ``sealed`` seals (and its cipher opens) external models' credentials in
        stored snapshots."""
        self._db = db
        self._fenced = fenced
        self._controller = controller
        self._bus = bus
        self._sealed = sealed
        self._holder = holder
        self._clock = clock
        self._settings = settings
        self._renewed = 0.0
        self._followed = -1
        """The version of the stored snapshot last loaded into (or written from) the bus."""
        self._shared: dict[tuple[str, int, str], ReplicaCount] | None = None
        """The counts this server last stored while leading."""
        self._scales_version = -1
        """The version of the stored counts last loaded while following."""
        self._reported: tuple[float, GatewayLoad | None] = (0.0, None)
        """When this server last stored its row while following, and what it stored."""
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Look once at once, so that a server alone leads, and has its routes, before it
        answers; then keep looking beside the server."""
        await self._follow()
        if await asyncio.to_thread(self._acquire):
            await self._lead()
        else:
            log.info("another server leads the controller; this one follows its routes")
            await self._controller.drop_leftovers()
            await asyncio.to_thread(self._report_load)  # the leader waits for it from now on
        self._task = asyncio.create_task(self._run(), name="berth-leadership")

    async def close(self) -> None:
        """Stop looking; when leading, stop the controller first, then let the lease go so
        another server takes over at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._resign()
        try:
            await asyncio.to_thread(self._forget)
        except Exception:
            log.exception("this server's load row could not be removed; it goes stale by itself")

    @property
    def term(self) -> Term | None:
        """The lease this server holds now; None while another leads."""
        return self._fenced.term

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._settings.follow_s)
            try:
                if self.term is not None:
                    await self._keep()
                    if self.term is not None:
                        self._post_load(await asyncio.to_thread(self._followers))
                        await asyncio.to_thread(self._share_scales)
                else:
                    await self._follow()
                    await asyncio.to_thread(self._follow_scales)
                    await asyncio.to_thread(self._report_load)
                    if await asyncio.to_thread(self._acquire):
                        await self._lead()
            except Exception:
                log.exception("the controller lease could not be looked at; trying again")

    def _acquire(self) -> bool:
        now = self._clock.now_ms()
        with self._db.transaction() as session:
            token = leases.acquire(session, leases.CONTROLLER, self._holder, now, self._ttl_ms)
        if token is None:
            return False
        self._fenced.term = Term(self._holder, token)
        self._renewed = time.monotonic()
        return True

    async def _lead(self) -> None:
        """Run the controller from the routes the last leader stored (its later writes are
        refused now), publishing on from their version."""
        assert self.term is not None
        log.info("this server leads the controller now (fencing token %d)", self.term.token)
        try:
            await self._follow()
            self._writer = asyncio.create_task(self._write(), name="berth-snapshot-writer")
            await self._controller.lead()
        except Exception:
            log.exception("taking over the controller failed; letting the lease go")
            await self._resign()

    async def _resign(self) -> None:
        """Step down and let the lease expire now, so another server takes over at once."""
        term = self.term
        await self._step_down()
        if term is None:
            return
        try:
            await asyncio.to_thread(self._release, term)
        except Exception:
            log.exception("the controller lease could not be let go; it expires by itself")

    def _release(self, term: Term) -> None:
        with self._db.transaction() as session:
            leases.release(session, leases.CONTROLLER, term.holder, term.token)

    async def _keep(self) -> None:
        """Renew when due; step down when another holds the lease, or when no renewal went
        through for a whole lease (another may hold it by now)."""
        assert self.term is not None
        if time.monotonic() - self._renewed < self._settings.renew_s:
            return
        try:
            renewed = await asyncio.to_thread(self._renew, self.term)
        except Exception:
            if time.monotonic() - self._renewed < self._settings.lease_s:
                raise
            log.exception("the controller lease could not be renewed in time")
            renewed = False
        if renewed:
            self._renewed = time.monotonic()
        else:
            log.warning("this server lost the controller lease; its controller stops")
            await self._step_down()

    def _renew(self, term: Term) -> bool:
        now = self._clock.now_ms()
        with self._db.transaction() as session:
            return leases.renew(
                session, leases.CONTROLLER, term.holder, term.token, now, self._ttl_ms
            )

    async def _step_down(self) -> None:
        self._fenced.term = None
        if self._writer is not None:
            # gather, not a suppressed await: a cancellation of this task must go through
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        await self._controller.stop()

    async def _follow(self) -> None:
        """Load the stored snapshot into the bus when it changed, its version raised past the
        bus's own if need be (gateway workers follow the bus by version)."""
        found = await asyncio.to_thread(self._stored)
        if found is None:
            return
        version, body = found
        snapshot = Snapshot.from_json(open_externals(json.loads(body), self._sealed.cipher))
        current = self._bus.current.version
        local = version if version > current else current + 1
        self._bus.publish(
            Snapshot(version=local, endpoints=snapshot.endpoints, tokens=snapshot.tokens)
        )
        self._followed = version

    def _stored(self) -> tuple[int, str] | None:
        with self._db.transaction() as session:
            if snapshots.version(session) == self._followed:
                return None
            return snapshots.load(session)

    async def _write(self) -> None:
        """Store each snapshot the controller publishes, fenced: a stale leader's is refused."""
        written = self._bus.current.version
        while True:
            snapshot = await self._bus.newer_than(written, SNAPSHOT_POLL_S)
            if snapshot.version == written:
                continue
            body = self._sealed.body(snapshot).decode()
            try:
                await asyncio.to_thread(self._save, snapshot.version, body)
            except LeaseLost as exc:
                log.warning("routes not stored: %s", exc.message)
                return
            except Exception:
                log.exception("routes not stored; trying again")
                await asyncio.sleep(self._settings.follow_s)
                continue
            written = self._followed = snapshot.version

    def _save(self, version: int, body: str) -> None:
        with self._fenced.transaction() as session:
            snapshots.save(session, version, body)

    def _share_scales(self) -> None:
        """Store the controller's counts when they changed, fenced (a stale leader's are
        refused, and the next renewal steps it down)."""
        counts = self._controller.sizing.scales
        if counts == self._shared:
            return
        body = json.dumps([[*key, *count] for key, count in counts.items()])
        try:
            with self._fenced.transaction() as session:
                scales.save(session, body)
        except LeaseLost as exc:
            log.warning("replica counts not stored: %s", exc.message)
            return
        self._shared = counts

    def _follow_scales(self) -> None:
        """Load the leader's counts into this server's controller when they changed."""
        with self._db.transaction() as session:
            if scales.version(session) == self._scales_version:
                return
            version, body = scales.load(session)
        counts = {
            (endpoint, config, entity): ReplicaCount(ready, desired)
            for endpoint, config, entity, ready, desired in json.loads(body or "[]")
        }
        self._controller.sizing.follow(counts)
        self._scales_version = version

    def _report_load(self) -> None:
        """Store what this server's gateways see and hold, when it changed or is due again."""
        report = json.dumps(report_to_json(self._controller.load.read()))
        load = GatewayLoad(report, self._followed)
        written_at, written = self._reported
        if load == written and time.monotonic() - written_at < LOAD_KEEPALIVE_S:
            return
        with self._db.transaction() as session:
            gateway_loads.post(session, self._holder, load, self._clock.now_ms())
        self._reported = (time.monotonic(), load)

    def _forget(self) -> None:
        with self._db.transaction() as session:
            gateway_loads.forget(session, self._holder)

    def _followers(self) -> dict[str, GatewayLoad]:
        """The rows of the other servers alive now (written in the last ``LOAD_STALE_MS``)."""
        with self._db.transaction() as session:
            found = gateway_loads.since(session, self._clock.now_ms() - LOAD_STALE_MS)
        found.pop(self._holder, None)  # written while this server followed
        return found

    async def followers_hold(self, version: int, timeout_s: float) -> None:
        """Return once every other live server's gateways route by the leader's snapshot
        ``version`` or a later one (or after ``timeout_s``, saying so): a replica the
        leader retires is then routed to by no server."""
        deadline = time.monotonic() + timeout_s
        while True:
            behind = [
                server
                for server, load in (await asyncio.to_thread(self._followers)).items()
                if load.snapshot_version < version
            ]
            if not behind:
                return
            if time.monotonic() >= deadline:
                log.warning("servers %s do not hold routes %d yet", ", ".join(behind), version)
                return
            await asyncio.sleep(FOLLOWERS_POLL_S)

    def _post_load(self, loads: dict[str, GatewayLoad]) -> None:
        """The other servers' fresh reports, to the autoscaler's board (on the event loop: a
        report of a waiting request wakes the controller)."""
        for server, load in loads.items():
            try:
                read = report_from_json(json.loads(load.report))
            except ValueError as exc:
                log.warning("the load report of server %s is unreadable: %s", server, exc)
                continue
            self._controller.report_load(f"server {server}", read)

    @property
    def _ttl_ms(self) -> int:
        return int(self._settings.lease_s * 1000)
