"""The local AWS IoT Core emulator: gateway, broker, registry, shadows and provisioning."""
