#define _GNU_SOURCE
#include "system_support.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

int CSystemSupport_eventfd(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

int CSystemSupport_eventfd_signal(int fd) {
    return eventfd_write(fd, 1);
}

int CSystemSupport_eventfd_clear(int fd) {
    eventfd_t value;
    return eventfd_read(fd, &value);
}

int CSystemSupport_set_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}

int CSystemSupport_peer_credentials(int fd, int *pid, unsigned int *uid, unsigned int *gid) {
    struct ucred credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
        return -1;
    }
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

int CSystemSupport_flock_exclusive_nonblocking(int fd) {
    return flock(fd, LOCK_EX | LOCK_NB);
}

// One pipe for every routed signal; set before the handler is installed, never closed.
static volatile int routed_signal_fd = -1;

static void route_handler(int signal_number) {
    int saved = errno;
    unsigned char byte = (unsigned char)signal_number;
    if (routed_signal_fd >= 0) {
        (void)write(routed_signal_fd, &byte, 1);
    }
    errno = saved;
}

int CSystemSupport_route_signal(int signal_number, int pipe_write_fd) {
    routed_signal_fd = pipe_write_fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = route_handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    return sigaction(signal_number, &action, NULL);
}
