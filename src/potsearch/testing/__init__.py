"""Test instruments (stand-in services for benchmarks and tests); never used by a search."""
