"""Native worker processes (router, container): started by the node
controller as ``python -m wampfabric.worker --type TYPE --id ID ...``."""
