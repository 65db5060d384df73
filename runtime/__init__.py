"""Carriers, router and dispatch, endpoints, CLI and benchmarks."""
