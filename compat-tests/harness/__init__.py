"""Helpers for the gregor Kafka-compatibility suite."""
