"""One simulated device: its MQTT connection (native engine), TLS identity and behaviours."""
