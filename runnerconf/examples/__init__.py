"""Small modules the example topologies in ``configs/`` use (shipped so the examples run as is)."""
