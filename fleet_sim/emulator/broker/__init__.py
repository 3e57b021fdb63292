"""The emulator's message broker: AWS IoT Core's MQTT semantics over the sans-IO server session."""
