#!/usr/bin/env python3
"""A TCP delay line for benchmarks: forwards each chunk after DELAY_MS, in both directions.

Loopback has no round-trip time to speak of; a relay's clients do. With this in front of a relay,
every request/response exchange pays 2 x DELAY_MS, as over a WAN link, while bandwidth stays
loopback's. Used by scripts/bench (BENCH_DELAY_MS).

    scripts/delay_proxy.py TARGET_PORT DELAY_MS   prints "proxy listening on PORT", then serves
"""
import asyncio
import sys


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(1 << 20)
            if not data:
                break
            loop.call_later(delay, writer.write, data)  # equal delays keep the order
    finally:
        loop.call_later(delay, writer.close)


async def main(target_port, delay):
    async def handle(client_reader, client_writer):
        relay_reader, relay_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pump(client_reader, relay_writer, delay), pump(relay_reader, client_writer, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"proxy listening on {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]) / 1000.0))
