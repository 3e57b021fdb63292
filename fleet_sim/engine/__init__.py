"""The fleet engine: target set-up, device lifecycles, the fleet runner and a whole run."""
