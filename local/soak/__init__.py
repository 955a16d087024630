"""`make soak`: the real handler through a seeded, simulated week under faults against the emulator, and the
controller's safety invariants checked from the emulator's own records (docs/failure-behaviour.md)."""
