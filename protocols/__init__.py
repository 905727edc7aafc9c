"""Measurement protocols that run unchanged on simulated and real benches."""
