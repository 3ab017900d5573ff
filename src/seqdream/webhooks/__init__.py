"""WaveSpeed-style webhooks: signed POSTs of the task object, from a durable outbox."""
