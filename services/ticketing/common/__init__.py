"""What every service shares: settings, Redis key layout, Kafka topic names, database and Kafka clients."""
