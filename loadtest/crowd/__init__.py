"""The crowd: simulated buyers and waiters that drive a sale over HTTP and WebSocket."""
