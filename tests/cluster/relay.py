#!/usr/bin/env python3
"""A userspace UDP relay that puts cluster nodes in zones on one machine
(this kernel has no netem): each node announces a front port of this relay
as its RPC address, and every datagram to it is delayed by the distance
between the sender's zone and the node's, then passed to the node's real
port; answers travel back the same way. It can also cut the cluster in two
sides: datagrams between them are dropped silently, as a firewall does.

    relay.py CONFIG

CONFIG is a JSON file, read again whenever it changes:

    {"nodes": [{"front": 41001, "rpc": 40001, "zone": "a"}, ...],
     "one_way_ms": 25,
     "cut": [[40001, 40002], [40003]]}

Nodes are named by their real RPC port (the address they send from). A
sender not in `nodes` is delayed as if in another zone. `cut` is empty, or
two lists of nodes; `nodes` must not change after the start.
"""
import asyncio
import json
import os
import sys


class Relay:
    def __init__(self, path):
        self.path = path
        self.mtime = None
        self.config = {}
        self.zone_of = {}  # rpc port -> zone
        self.side_of = {}  # rpc port -> 0 or 1 while a cut is on
        self.reload()

    def reload(self):
        try:
            mtime = os.stat(self.path).st_mtime_ns
            if mtime == self.mtime:
                return
            with open(self.path) as f:
                config = json.load(f)
        except (OSError, ValueError):
            return  # being rewritten: next time
        self.mtime, self.config = mtime, config
        self.zone_of = {n["rpc"]: n["zone"] for n in config["nodes"]}
        self.side_of = {}
        for side, ports in enumerate(config.get("cut") or []):
            for p in ports:
                self.side_of[p] = side

    def delay(self, a, b):
        same = a in self.zone_of and self.zone_of.get(a) == self.zone_of.get(b)
        return 0.0 if same else self.config.get("one_way_ms", 0) / 1000

    def cut(self, a, b):
        return a in self.side_of and b in self.side_of and self.side_of[a] != self.side_of[b]


class Back(asyncio.DatagramProtocol):
    """The socket toward one node for one sender: the node's answers come
    back here and go out through the node's front socket."""

    def __init__(self, relay, front, sender, node_port):
        self.relay, self.front, self.sender, self.node_port = relay, front, sender, node_port
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        a, b = self.node_port, self.sender[1]
        if self.relay.cut(a, b):
            return
        loop = asyncio.get_running_loop()
        loop.call_later(self.relay.delay(a, b), self.front.transport.sendto, data, self.sender)


class Front(asyncio.DatagramProtocol):
    def __init__(self, relay, node_port):
        self.relay, self.node_port = relay, node_port
        self.transport = None
        self.backs = {}

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, sender):
        a, b = sender[1], self.node_port
        if self.relay.cut(a, b):
            return
        back = self.backs.get(sender)
        loop = asyncio.get_running_loop()
        if back is None:
            back = Back(self.relay, self, sender, self.node_port)
            self.backs[sender] = back
            loop.create_task(self.open(back, data, sender))
            return
        self.forward(back, data, sender)

    async def open(self, back, first, sender):
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: back, local_addr=("127.0.0.1", 0))
        self.forward(back, first, sender)

    def forward(self, back, data, sender):
        if back.transport is None:
            return
        loop = asyncio.get_running_loop()
        loop.call_later(self.relay.delay(sender[1], self.node_port), back.transport.sendto, data,
                        ("127.0.0.1", self.node_port))


async def main(path):
    relay = Relay(path)
    loop = asyncio.get_running_loop()
    for n in relay.config["nodes"]:
        await loop.create_datagram_endpoint(lambda n=n: Front(relay, n["rpc"]), local_addr=("127.0.0.1", n["front"]))
    print("relay ready", flush=True)
    while True:
        await asyncio.sleep(0.05)
        relay.reload()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
