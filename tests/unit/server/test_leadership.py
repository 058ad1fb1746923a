"""Two servers' leaderships on one store: one leads, the other follows its routes and takes
over when the leader goes or loses the lease."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from berth.controller.autoscaler import Autoscaler, Policy
from berth.controller.load_board import LoadBoard
from berth.controller.sizing import ReplicaCount, Sizing
from berth.core.dataplane import EndpointRoute, EntityRoute, ReplicaRoute, Snapshot, SnapshotBus
from berth.core.load import EntityLoad, LoadReport
from berth.metrics import Metrics
from berth.secrets.cipher import SecretCipher
from berth.secrets.sealed_snapshot import SealedSnapshots
from berth.server.leadership import Leadership, server_id
from berth.settings import LeaderSettings
from berth.store import gateway_loads, leases
from berth.store.db import Database
from berth.store.fencing import Fenced
from berth.store.gateway_loads import GatewayLoad

QUICK = LeaderSettings(lease_s=0.5, renew_s=0.05, follow_s=0.02)
KEY = os.urandom(32)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def now_ms(self) -> int:
        return self.now


class Controlled:
    """What the leadership did to its controller, in order; the demand it was told of."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.load = LoadBoard()
        self.sizing = Sizing(Autoscaler(Policy()), self.load, Metrics())
        self.reports: dict[str, LoadReport] = {}

    def report_load(self, source: str, report: LoadReport) -> None:
        self.reports[source] = report

    async def lead(self) -> None:
        self.calls.append("lead")

    async def stop(self) -> None:
        self.calls.append("stop")

    async def drop_leftovers(self) -> None:
        self.calls.append("drop_leftovers")


class Server:
    def __init__(self, db: Database, name: str, clock: Clock) -> None:
        self.bus = SnapshotBus()
        self.controller = Controlled()
        self.leadership = Leadership(
            db,
            Fenced(db, leases.CONTROLLER),
            self.controller,
            self.bus,
            SealedSnapshots(SecretCipher(KEY)),
            name,
            clock,
            QUICK,
        )


def routes(version: int, key: str = "sk-plain") -> Snapshot:
    external = EntityRoute("gpt", 50, (), external={"openai_api_key_plaintext": key})
    local = EntityRoute("m", 50, (ReplicaRoute("ep.m.abc.0", "unix:/r/ep.m.abc.0.sock", 4),))
    return Snapshot(version, {"ep": EndpointRoute("ep", "id-1", 1, (external, local))})


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


def test_one_leads_the_other_routes_by_its_snapshots(db: Database) -> None:
    async def scenario() -> None:
        clock = Clock()
        a, b = Server(db, "a", clock), Server(db, "b", clock)
        await a.leadership.start()
        await b.leadership.start()
        assert (a.leadership.term is not None, b.leadership.term) == (True, None)
        assert (a.controller.calls, b.controller.calls) == (["lead"], ["drop_leftovers"])

        a.bus.publish(routes(1))
        await until(lambda: b.bus.current.version == 1)
        assert b.bus.current.endpoints == routes(1).endpoints  # credentials opened again
        with db.engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT body FROM data_plane_snapshots").scalar_one()
        assert "sk-plain" not in stored  # sealed with the servers' shared key
        await a.leadership.close()
        await b.leadership.close()

    asyncio.run(scenario())


def test_a_follower_answers_with_the_leaders_replica_counts(db: Database) -> None:
    """The leader's counts reach the follower's controller when they change, which GET
    reads through any server; a stale leader's counts are refused."""

    async def scenario() -> None:
        a_clock, b_clock = Clock(), Clock()
        a, b = Server(db, "a", a_clock), Server(db, "b", b_clock)
        await a.leadership.start()
        await b.leadership.start()
        counted = {("ep", 1, "m"): ReplicaCount(2, 3)}
        a.controller.sizing.follow(counted)  # as a pass of a's controller leaves them
        await until(lambda: b.controller.sizing.scale("ep") == {(1, "m"): (2, 3)})
        a.controller.sizing.follow({("ep", 1, "m"): ReplicaCount(3, 3)})
        await until(lambda: b.controller.sizing.scale("ep") == {(1, "m"): (3, 3)})

        b_clock.now += int(QUICK.lease_s * 1000)  # b sees a's lease expired and takes it
        await until(lambda: b.leadership.term is not None)
        b.controller.sizing.follow({("ep", 2, "m"): ReplicaCount(1, 1)})
        await until(lambda: a.controller.sizing.scale("ep") == {(2, "m"): (1, 1)})
        await a.leadership.close()
        await b.leadership.close()

    asyncio.run(scenario())


def test_when_the_leader_stops_the_follower_takes_over_and_publishes_on(db: Database) -> None:
    async def scenario() -> None:
        clock = Clock()
        a, b = Server(db, "a", clock), Server(db, "b", clock)
        await a.leadership.start()
        await b.leadership.start()
        a.bus.publish(routes(7))
        await until(lambda: b.bus.current.version == 7)
        await a.leadership.close()  # lets the lease go: no waiting for it to expire
        await until(lambda: "lead" in b.controller.calls)
        assert a.controller.calls == ["lead", "stop"]
        assert b.controller.calls == ["drop_leftovers", "lead"]
        assert b.leadership.term is not None and b.leadership.term.token == 2
        await b.leadership.close()

    asyncio.run(scenario())


def test_a_leader_that_cannot_renew_in_time_steps_down(db: Database) -> None:
    """``a`` paused past its lease: ``b`` took it; ``a`` stops its controller at its next
    renewal, and its snapshots are refused meanwhile."""

    async def scenario() -> None:
        a_clock, b_clock = Clock(), Clock()
        a, b = Server(db, "a", a_clock), Server(db, "b", b_clock)
        await a.leadership.start()
        await b.leadership.start()
        b_clock.now += int(QUICK.lease_s * 1000)  # b sees a's lease expired
        await until(lambda: b.leadership.term is not None)
        await until(lambda: "stop" in a.controller.calls)
        assert a.leadership.term is None and a.controller.calls == ["lead", "stop"]
        a.bus.publish(routes(3, key="sk-stale"))
        b.bus.publish(routes(2))
        await until(lambda: a.bus.current.version > 3)  # a follows b's routes again
        assert "sk-stale" not in str(a.bus.current.endpoints)
        await a.leadership.close()
        await b.leadership.close()

    asyncio.run(scenario())


def test_the_demand_a_follower_sees_reaches_the_leader(db: Database) -> None:
    async def scenario() -> None:
        clock = Clock()
        a, b = Server(db, "a", clock), Server(db, "b", clock)
        await a.leadership.start()
        await b.leadership.start()
        waiting = {("ep", "m"): EntityLoad(in_flight=0, waiting=1)}
        b.controller.load.post("b's gateway", waiting)
        with db.transaction() as session:  # a server whose report is garbage counts for none
            gateway_loads.post(session, "c", GatewayLoad("[[1, 2", 0), clock.now_ms())
        await until(lambda: a.controller.reports.get("server b") == waiting)
        assert set(a.controller.reports) == {"server b"}
        b.controller.load.post("b's gateway", {})  # the request was answered
        await until(lambda: a.controller.reports.get("server b") == {})
        await a.leadership.close()
        await b.leadership.close()

    asyncio.run(scenario())


def test_the_server_id_is_kept_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "server-id"
    first = server_id(path)
    assert server_id(path) == first and path.stat().st_mode & 0o777 == 0o600


def test_the_leader_knows_when_every_follower_routes_by_its_newest_snapshot(
    db: Database,
) -> None:
    async def scenario() -> None:
        clock = Clock()
        a, b = Server(db, "a", clock), Server(db, "b", clock)
        await a.leadership.start()
        await b.leadership.start()
        a.bus.publish(routes(5))
        await asyncio.wait_for(a.leadership.followers_hold(5, timeout_s=10), 5)
        assert b.bus.current.version == 5
        await b.leadership.close()  # a follower that stops is waited for no more
        with db.transaction() as session:  # nor is one killed, once its row is old
            gateway_loads.post(session, "c", GatewayLoad("[]", 0), clock.now_ms() - 60_000)
        a.bus.publish(routes(6))
        await asyncio.wait_for(a.leadership.followers_hold(6, timeout_s=10), 5)
        await a.leadership.close()

    asyncio.run(scenario())
