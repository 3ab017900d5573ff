"""The job queue: durable store, group planning and the worker loop."""
