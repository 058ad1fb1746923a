"""A replica's stop that is cut short still stops it: the server may stop mid-drain (the
controller's tasks cancelled), and nothing would be left to stop the process after it."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from berth.backends.process import Process

pytestmark = pytest.mark.integration

DEAF = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(120)"
)
"""A process that ignores SIGTERM, as a replica still loading its model may."""


async def deaf_process() -> Process:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DEAF, stdout=asyncio.subprocess.PIPE, start_new_session=True
    )
    assert child.stdout is not None
    assert await child.stdout.readline() == b"up\n"
    return Process(child.pid, child)


def test_a_cancelled_terminate_kills_the_process() -> None:
    async def scenario() -> int | None:
        process = await deaf_process()
        stopping = asyncio.create_task(process.terminate(grace_s=60))
        await asyncio.sleep(0.2)  # SIGTERM sent and ignored: the grace period runs
        assert process.alive()
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping
        await asyncio.wait_for(process.wait(), 5)
        return process.returncode

    assert asyncio.run(scenario()) == -signal.SIGKILL
