"""Crossbar.io's error URIs (``crossbar.error.*``), which peers see in ERROR messages.

WAMP itself predefines only ``wamp.error.*`` (``errors.py``); these are the ones
Crossbar.io answers with, spelt as it spells them, so that clients and managers
written against Crossbar.io recognise them.  Most come from the management API
(the node controller's ``crossbar.*`` and the native workers'
``crossbar.worker.<id>.*`` procedures); one from the router's dealer.
"""

# -- management API: the node controller ------------------------------------------------

NO_SUCH_WORKER = "crossbar.error.no_such_worker"
WORKER_ALREADY_RUNNING = "crossbar.error.worker_already_running"
SHUTDOWN_REQUESTED = "crossbar.error.shutdown_requested"

# -- management API: node and native workers ---------------------------------------------

INVALID_ARGUMENT = "crossbar.error.invalid_argument"
INVALID_CONFIGURATION = "crossbar.error.invalid_configuration"
CANNOT_START = "crossbar.error.cannot_start"
NO_SUCH_OBJECT = "crossbar.error.no_such_object"
ALREADY_RUNNING = "crossbar.error.already_running"
ALREADY_EXISTS = "crossbar.error.already_exists"
CANNOT_LISTEN = "crossbar.error.cannot_listen"
CLASS_IMPORT_FAILED = "crossbar.error.class_import_failed"

# -- router: the dealer ---------------------------------------------------------------------

# a caller's outstanding calls or a callee's invocations are over the realm's bound
MAX_CONCURRENCY_REACHED = "crossbar.error.max_concurrency_reached"
