"""The I/O ring's byte movers: TLS over asyncio transports, shared by emulator and simulator."""
