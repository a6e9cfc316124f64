"""Telemetry: samplers of process and system metrics, Prometheus scraping, anomaly detection."""
