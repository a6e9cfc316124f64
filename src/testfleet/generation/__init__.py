"""Generated test data learned from production traffic (issue 9): ingest captures, learn a model
per endpoint, generate realistic requests, validate them, plan scenarios, watch for drift."""
