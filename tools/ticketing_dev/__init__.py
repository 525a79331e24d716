"""Real backing servers (Redis, MariaDB, Kafka, kube-apiserver) run as local processes on loopback."""
