#!/usr/bin/env python3
"""A TCP forwarding proxy that holds every chunk for a set delay: the fault
tests' latency (this machine's kernel has no netem qdisc).

Each ``--map LISTEN=TARGET`` (HOST:PORT each; port 0 in LISTEN picks a free
one) accepts connections on LISTEN and opens one connection to TARGET per
accepted one. Bytes keep their order in each direction, and every chunk is
written DELAY ms after it was read. When either side closes or fails, both
connections are closed, so a peer sees the other go away as it would
without the proxy (a restarted server, a reconnecting client). A TARGET
that refuses the connection gets the accepted one closed at once.

Once every map listens it prints one line ``HOST:PORT`` per map, in order,
on stdout; then it runs until SIGTERM or SIGINT.

Usage: delay_proxy.py --delay-ms 20 --map 127.0.0.1:0=10.0.0.1:7000 ...
"""
import argparse
import asyncio
import signal
import sys

CHUNK = 65536
QUEUED = 256  # chunks held per direction before the reader waits


def host_port(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def mapping(text):
    listen, sep, target = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected LISTEN=TARGET, got {text!r}")
    return host_port(listen), host_port(target)


async def pump(reader, writer, delay, done):
    """Copies reader to writer, each chunk `delay` seconds after it came."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue(QUEUED)

    async def send():
        while True:
            item = await queue.get()
            if item is None:
                return
            due, data = item
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while not done.is_set():
            data = await reader.read(CHUNK)
            if not data:
                break
            await queue.put((loop.time() + delay, data))
        await queue.put(None)
        await sender
    except (ConnectionError, OSError):
        pass
    finally:
        sender.cancel()
        done.set()


async def close(writer):
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


def handler(target, delay):
    async def serve(c_reader, c_writer):
        try:
            s_reader, s_writer = await asyncio.open_connection(*target)
        except OSError:
            await close(c_writer)
            return
        done = asyncio.Event()
        ups = asyncio.create_task(pump(c_reader, s_writer, delay, done))
        downs = asyncio.create_task(pump(s_reader, c_writer, delay, done))
        await done.wait()
        for t in (ups, downs):
            t.cancel()
        await close(s_writer)
        await close(c_writer)

    return serve


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--map", type=mapping, action="append", required=True,
                    metavar="LISTEN=TARGET")
    args = ap.parse_args()
    if args.delay_ms < 0:
        ap.error("--delay-ms must not be negative")
    servers = []
    for (lhost, lport), target in args.map:
        srv = await asyncio.start_server(handler(target, args.delay_ms / 1000.0),
                                         lhost, lport)
        servers.append(srv)
        host, port = srv.sockets[0].getsockname()[:2]
        print(f"{host}:{port}")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for srv in servers:
        srv.close()


if __name__ == "__main__":
    asyncio.run(main())
