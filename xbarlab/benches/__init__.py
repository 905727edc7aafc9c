"""Embedded bench files (TOML), loaded by name through :func:`xbarlab.benchfile.load_bench`."""
