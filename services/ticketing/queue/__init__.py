"""The waiting room: a fair line per sale, admission at the configured rate, live positions."""
