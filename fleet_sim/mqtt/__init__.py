"""Sans-IO MQTT 3.1.1 and 5: packets, codec, topic rules and session state machines.

Nothing in this package imports asyncio, socket or ssl (a test enforces it). The client and
server sessions take bytes and the current time in, and hand bytes, events and timer
deadlines out; drivers elsewhere move them over real connections.
"""
