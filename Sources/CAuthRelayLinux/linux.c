#define _GNU_SOURCE
#include "authrelay_linux.h"
#include <pthread.h>
#include <sys/eventfd.h>

int CAuthRelayLinux_eventfd(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

int CAuthRelayLinux_eventfd_signal(int fd) {
    return eventfd_write(fd, 1);
}

int CAuthRelayLinux_eventfd_clear(int fd) {
    eventfd_t value;
    return eventfd_read(fd, &value);
}

int CAuthRelayLinux_set_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
