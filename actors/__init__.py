"""The per-stream state machine, the actor task that applies it, and local pairing."""
