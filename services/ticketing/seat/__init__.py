"""The seat service: venues and their seat maps, and each sale's seat inventory in Redis."""
