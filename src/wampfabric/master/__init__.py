"""The master personality: manages edge nodes in management realms (docs/fabric.md)."""
