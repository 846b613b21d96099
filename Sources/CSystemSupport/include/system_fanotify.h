// CSystemSupport, fanotify part: <sys/fanotify.h> is not in Glibc's Swift
// module, and its event-walking helpers are function-like macros Swift
// cannot call. One function per call; constants are read from the C headers.
#ifndef SYSTEM_FANOTIFY_H
#define SYSTEM_FANOTIFY_H

#include <stddef.h>
#include <stdint.h>

// What the agent needs of one struct fanotify_event_metadata.
typedef struct {
    uint64_t mask;
    int32_t fd;
    int32_t pid;
} CSystemSupport_fanotify_event;

// fanotify_init(2): declared in <sys/fanotify.h>, which Glibc's module lacks.
int CSystemSupport_fanotify_init(unsigned int flags, unsigned int event_f_flags);

// fanotify_mark(2): declared in <sys/fanotify.h>, which Glibc's module lacks.
int CSystemSupport_fanotify_mark(int fanotify_fd, unsigned int flags, uint64_t mask, int dirfd, const char *pathname);

// Decodes the event at *offset in a buffer filled by read(2) and advances
// *offset: FAN_EVENT_OK / FAN_EVENT_NEXT are macros Swift cannot call.
// Returns 1 with *event filled, 0 when no complete event is left, -1 when the
// kernel's metadata version is not the one this was built against.
int CSystemSupport_fanotify_next_event(const void *buffer, size_t length, size_t *offset,
                                        CSystemSupport_fanotify_event *event);

// Writes struct fanotify_response {event_fd, response} in one write(2), so the
// Swift side never depends on the struct's layout. Returns 0 or -1 with errno.
int CSystemSupport_fanotify_respond(int fanotify_fd, int event_fd, uint32_t response);

// Flag values from <sys/fanotify.h> and <fcntl.h>, for the Swift side.
extern const unsigned int CSystemSupport_FAN_CLOEXEC;
extern const unsigned int CSystemSupport_FAN_NONBLOCK;
extern const unsigned int CSystemSupport_FAN_CLASS_CONTENT;
extern const unsigned int CSystemSupport_FAN_MARK_ADD;
extern const unsigned int CSystemSupport_FAN_MARK_MOUNT;
extern const uint64_t CSystemSupport_FAN_OPEN_PERM;
extern const uint64_t CSystemSupport_FAN_OPEN_EXEC_PERM;
extern const uint64_t CSystemSupport_FAN_EVENT_ON_CHILD;
extern const uint64_t CSystemSupport_FAN_Q_OVERFLOW;
extern const uint32_t CSystemSupport_FAN_ALLOW;
extern const uint32_t CSystemSupport_FAN_DENY;
extern const int32_t CSystemSupport_FAN_NOFD;
// O_RDONLY | O_LARGEFILE | O_CLOEXEC: the flags of the file descriptors events carry
// (O_LARGEFILE is 0 in 64-bit userspace headers; the kernel adds it itself there).
extern const unsigned int CSystemSupport_FANOTIFY_EVENT_FD_FLAGS;

#endif
