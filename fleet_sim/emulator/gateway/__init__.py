"""The emulator's device gateway: TLS listeners, client authentication, bytes to the broker."""
