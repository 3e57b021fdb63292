"""Unit tests of the AWS IoT policy engine (``fleet_sim.policy``)."""
