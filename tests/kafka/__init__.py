"""The brokers integration tests run on: the embedded Tansu broker and a real Apache Kafka."""
