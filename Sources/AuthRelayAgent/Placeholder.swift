// The agent's auth sources (fanotify, synthetic); written next.
