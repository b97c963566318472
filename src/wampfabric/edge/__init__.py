"""The edge personality: a node managed by a master node (docs/fabric.md)."""
