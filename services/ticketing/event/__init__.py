"""The event service: the catalogue of events, each with its venue and its sale window."""
