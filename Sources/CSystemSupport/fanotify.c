#define _GNU_SOURCE
#include "system_fanotify.h"
#include <fcntl.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>

int CSystemSupport_fanotify_init(unsigned int flags, unsigned int event_f_flags) {
    return fanotify_init(flags, event_f_flags);
}

int CSystemSupport_fanotify_mark(int fanotify_fd, unsigned int flags, uint64_t mask, int dirfd, const char *pathname) {
    return fanotify_mark(fanotify_fd, flags, mask, dirfd, pathname);
}

int CSystemSupport_fanotify_next_event(const void *buffer, size_t length, size_t *offset,
                                        CSystemSupport_fanotify_event *event) {
    if (*offset >= length) return 0;
    const struct fanotify_event_metadata *metadata =
        (const struct fanotify_event_metadata *)((const char *)buffer + *offset);
    size_t left = length - *offset;
    if (!FAN_EVENT_OK(metadata, left)) return 0;
    if (metadata->vers != FANOTIFY_METADATA_VERSION) return -1;
    event->mask = metadata->mask;
    event->fd = metadata->fd;
    event->pid = metadata->pid;
    *offset += metadata->event_len;
    return 1;
}

int CSystemSupport_fanotify_respond(int fanotify_fd, int event_fd, uint32_t response) {
    struct fanotify_response answer;
    memset(&answer, 0, sizeof answer);
    answer.fd = event_fd;
    answer.response = response;
    ssize_t written = write(fanotify_fd, &answer, sizeof answer);
    if (written == (ssize_t)sizeof answer) return 0;
    return -1;
}

const unsigned int CSystemSupport_FAN_CLOEXEC = FAN_CLOEXEC;
const unsigned int CSystemSupport_FAN_NONBLOCK = FAN_NONBLOCK;
const unsigned int CSystemSupport_FAN_CLASS_CONTENT = FAN_CLASS_CONTENT;
const unsigned int CSystemSupport_FAN_MARK_ADD = FAN_MARK_ADD;
const unsigned int CSystemSupport_FAN_MARK_MOUNT = FAN_MARK_MOUNT;
const uint64_t CSystemSupport_FAN_OPEN_PERM = FAN_OPEN_PERM;
const uint64_t CSystemSupport_FAN_OPEN_EXEC_PERM = FAN_OPEN_EXEC_PERM;
const uint64_t CSystemSupport_FAN_EVENT_ON_CHILD = FAN_EVENT_ON_CHILD;
const uint64_t CSystemSupport_FAN_Q_OVERFLOW = FAN_Q_OVERFLOW;
const uint32_t CSystemSupport_FAN_ALLOW = FAN_ALLOW;
const uint32_t CSystemSupport_FAN_DENY = FAN_DENY;
const int32_t CSystemSupport_FAN_NOFD = FAN_NOFD;
const unsigned int CSystemSupport_FANOTIFY_EVENT_FD_FLAGS = O_RDONLY | O_LARGEFILE | O_CLOEXEC;
