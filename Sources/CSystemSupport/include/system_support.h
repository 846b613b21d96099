// CSystemSupport: the Linux calls that Glibc's Swift module does not import
// (they need _GNU_SOURCE, or are macros), for the SystemSupport seam only.
// One function per call; each says why it is here.
#ifndef SYSTEM_SUPPORT_H
#define SYSTEM_SUPPORT_H

#include <stdint.h>
#include <sys/types.h>

// eventfd(2) with EFD_NONBLOCK | EFD_CLOEXEC: a wake-up signal for poll().
// <sys/eventfd.h> is not in Glibc's Swift module.
int CSystemSupport_eventfd(void);
// eventfd_write(3): adds 1; returns 0 or -1 with errno.
int CSystemSupport_eventfd_signal(int fd);
// eventfd_read(3): clears the counter; returns 0 or -1 with errno (EAGAIN when clear).
int CSystemSupport_eventfd_clear(int fd);

// pthread_setname_np(3) on the calling thread (needs _GNU_SOURCE).
int CSystemSupport_set_thread_name(const char *name);

// struct ucred and SO_PEERCRED's result need _GNU_SOURCE. Fills the peer's
// pid, uid and gid of an AF_LOCAL socket as the kernel recorded them at
// connect(); returns 0, or -1 with errno.
int CSystemSupport_peer_credentials(int fd, int *pid, unsigned int *uid, unsigned int *gid);

// flock(2) LOCK_EX | LOCK_NB: Swift takes `flock` for the struct of the same name.
int CSystemSupport_flock_exclusive_nonblocking(int fd);

// The signal handler SystemSupport installs for the signals it routes: writes
// the signal number as one byte to the pipe `fd` set by
// CSystemSupport_route_signal (write(2) is async-signal-safe), keeping errno.
// In C: a Swift closure as a signal handler may not be async-signal-safe.
int CSystemSupport_route_signal(int signal_number, int pipe_write_fd);

#endif
