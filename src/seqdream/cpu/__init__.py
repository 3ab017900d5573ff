"""Sharing the machine's CPUs: thread pools sized for the core budget (threads), the load other
processes put on our cores (load), a pool for per-image work (parallel), and the allocator setting
that keeps large buffers between tasks (allocator)."""
