"""ticketing: a flash-sale ticketing platform."""
