// CSystemSupport, futex part: glibc has no futex(2) wrapper, and syscall(2)
// is variadic, which Swift cannot call. Shared (not FUTEX_PRIVATE) operations,
// so the word may live in memory that two processes map (MAP_SHARED).
#ifndef SYSTEM_FUTEX_H
#define SYSTEM_FUTEX_H

#include <stdint.h>

// FUTEX_WAIT: sleeps while *word == expected, at most timeout_ns (< 0: no
// limit). Returns 0 when woken (or spuriously), -1 with errno: EAGAIN when
// *word != expected at the call, ETIMEDOUT, EINTR.
int CSystemSupport_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns);

// FUTEX_WAKE: wakes up to `count` waiters on `word`; returns how many, or -1 with errno.
int CSystemSupport_futex_wake(uint32_t *word, int count);

#endif
