"""Benchmarks (``make bench``): each module measures one area and returns a :class:`bench.common.Section`."""
