"""The retry ladder: failed messages wait in Redis, come back after their delay, and end in a dead-letter topic."""
