"""Helpers of the node controller, the worker processes and the router: time formats, process
statistics, GC tuning, log output.  They import nothing of wampfabric outside common/."""
