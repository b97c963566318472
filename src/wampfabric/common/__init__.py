"""Helpers of both the node controller and the worker processes: time formats, process
statistics, GC tuning, log output.  They import nothing of wampfabric."""
