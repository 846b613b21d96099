// The latency comparison scenarios; written next.
