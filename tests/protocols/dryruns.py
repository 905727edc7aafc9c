"""The dry-run report of a protocol, as ``xbarlab run NAME --dry-run`` computes it."""

from xbarlab.engine import run_protocol


def dry_report(protocol, bench, **params):
    """Play `protocol` on recording instruments for `bench` through the engine; its report."""
    return run_protocol(protocol, bench, dry_run=True, progress=False, **params).dry_run
