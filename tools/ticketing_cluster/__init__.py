"""`./dev cluster`: the platform on a kind cluster built offline on this machine (docs/kind.md)."""
