"""streamlet: an actor-based stream runtime for trio."""
