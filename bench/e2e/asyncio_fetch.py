"""The seed's experiment: N concurrent aiohttp GETs on one asyncio loop, bodies read and dropped.

No connection limit (aiohttp's default of 100 would serialise 1000 calls into ten rounds).
Prints {wallSeconds, cpuSeconds, peakRssMiB, ok} as JSON.
Usage: python3 bench/e2e/asyncio_fetch.py URL N   (Debian: apt-get install python3-aiohttp)
"""
import asyncio
import json
import resource
import sys
import time

import aiohttp


async def main(base: str, n: int) -> None:
    started = time.perf_counter()
    cpu = time.process_time()
    ok = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int) -> None:
            nonlocal ok
            async with session.get(f"{base}/adjust/peer-{i}/report") as response:
                await response.read()
                if response.status == 200:
                    ok += 1

        await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "wallSeconds": wall,
                "cpuSeconds": time.process_time() - cpu,
                "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "ok": ok,
            }
        )
    )


asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000))
