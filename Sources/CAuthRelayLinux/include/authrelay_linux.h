// CAuthRelayLinux: Linux calls that Glibc's Swift module does not import
// (they need _GNU_SOURCE or headers it leaves out). One function per call.
#ifndef AUTHRELAY_LINUX_H
#define AUTHRELAY_LINUX_H

#include <stdint.h>
#include <sys/types.h>

// eventfd(2) with EFD_NONBLOCK | EFD_CLOEXEC: a wake-up signal for poll().
int CAuthRelayLinux_eventfd(void);
// eventfd_write(3): adds 1; returns 0 or -1 with errno.
int CAuthRelayLinux_eventfd_signal(int fd);
// eventfd_read(3): clears the counter; returns 0 or -1 with errno (EAGAIN when clear).
int CAuthRelayLinux_eventfd_clear(int fd);

// pthread_setname_np(3) on the calling thread (needs _GNU_SOURCE).
int CAuthRelayLinux_set_thread_name(const char *name);

#endif
#include "authrelay_fanotify.h"
