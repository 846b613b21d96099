/*
 * legacy-collector: an AuthRelay collector written in plain C from
 * rpcgen/authrelay.x, the way users of AuthRelay write them today.
 * It serves the rpcgen dispatcher (generated/authrelay_svc.c, rpcgen -M -m)
 * and implements the *_svc procedures below.
 *
 * Version 1 (always): AR1_REPORT_EVENT writes one line per event and acks
 * {AR_STATUS_OK, seq}. With -2 it also serves version 2 in a "count only"
 * mode for benchmarks: AR2_REPORT_BATCH counts events and writes nothing.
 * Without -2 a client asking for version 2 gets PROG_MISMATCH: this is a
 * v1-only legacy collector. -3 serves version 3 the same count-only way.
 *
 * Event line format (one line per event, fields in this order, separated by
 * one TAB, each field is key=value):
 *
 *   seq=N  timestamp_ns=N  kind=OPEN|EXEC|<number>  verdict=ALLOW|DENY|<number>
 *   decision_ns=N  pid=N  ppid=N  uid=N  gid=N  flags=N
 *   exe_path=STR  target_path=STR  digest=HEX
 *
 * Numbers are decimal. kind and verdict print their name when known and the
 * raw number otherwise (unknown values are kept, not rejected). In exe_path
 * and target_path every byte below 0x20, 0x7f and the backslash is written as
 * \xHH, so a line never contains a raw TAB or newline. digest is lowercase
 * hex, empty when the event has no digest.
 *
 * Messages on stderr (one line each, for people and for tests):
 *   legacy-collector: listening tcp 127.0.0.1:PORT   (also udp, tcp6 [::1]:PORT, unix PATH)
 *   legacy-collector: ready
 *   legacy-collector: events=N batches=M             (at exit; events counts both versions)
 */
#define _DEFAULT_SOURCE /* libtirpc's headers use BSD types (u_int, u_quad_t) */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <netconfig.h>
#include <rpc/rpc.h>
#include <rpc/rpcb_clnt.h>

#include "authrelay.h"

/* The dispatchers rpcgen -m generates; its header does not declare them. */
void authrelay_prog_1(struct svc_req *rqstp, SVCXPRT *transp);
void authrelay_prog_2(struct svc_req *rqstp, SVCXPRT *transp);
void authrelay_prog_3(struct svc_req *rqstp, SVCXPRT *transp);

#define PROG_NAME "legacy-collector"
#define DEFAULT_UNIX_PATH "/tmp/legacy-collector.sock"

/* UDP buffers as large as one IPv4 datagram (65507, rounded down to a
 * multiple of 4): the default 8800 bytes would not hold a v2 batch. */
#define UDP_BUFSIZE 65504

enum { T_TCP = 1, T_UDP = 2, T_UNIX = 4 };

/* One listening transport. */
struct listener {
    const char *netid;            /* "tcp", "udp", "tcp6", "udp6" or "local" */
    bool stream;                  /* svc_vc (tcp, local) or svc_dg (udp) */
    int fd;
    SVCXPRT *xprt;
    struct sockaddr_storage addr; /* the bound address, what rpcbind is told */
    socklen_t addrlen;
};

/* ---- state shared with the procedures (the server is single-threaded) ---- */

static FILE *out;             /* event lines go here; NULL with -q */
static uint64_t n_events;     /* events received, both versions */
static uint64_t n_legacy;     /* events received through version 1 */
static uint64_t n_batches;    /* REPORT_BATCH calls */
static uint64_t started_ns;   /* CLOCK_REALTIME at start */

static int signal_pipe[2] = { -1, -1 };

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG_NAME " [-2] [-3] [-n] [-q] [-p PROGRAM] [-t tcp|udp|unix[,...]] [-P PORT]\n"
        "                        [-b ADDR] [-s PATH] [-o FILE]\n"
        "  -2          also serve version 2 (count only: REPORT_BATCH counts, writes nothing)\n"
        "  -3          also serve version 3 (count only, as -2)\n"
        "  -p PROGRAM  program number, decimal or 0x hex (default 0x%X)\n"
        "  -t LIST     transports: tcp, udp, unix; repeatable or comma list (default tcp,udp)\n"
        "  -P PORT     fixed port for tcp and udp (default 0: any)\n"
        "  -b ADDR     bind address for tcp and udp (default 127.0.0.1)\n"
        "  -s PATH     AF_LOCAL socket path for unix (default " DEFAULT_UNIX_PATH ")\n"
        "  -n          do not register with rpcbind (read the ports from the 'listening' lines)\n"
        "  -o FILE     append event lines to FILE instead of stdout\n"
        "  -q          quiet: count events but write no event lines\n"
        "  -?          this help\n",
        (unsigned)AUTHRELAY_PROG);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG_NAME ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* A bad flag or value: say which, show the usage, exit 2. */
static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG_NAME ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    usage(stderr);
    exit(2);
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------------- */
/* The procedures. With rpcgen -M the result lives in the dispatcher's stack
 * and we fill it in; returning TRUE makes the dispatcher send it. */

/* A path field: bytes that would break the line format become \xHH. */
static void put_path(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            fprintf(f, "\\x%02x", *p);
        else
            putc(*p, f);
    }
}

static bool write_event(FILE *f, const ar_event *e)
{
    static const char *const kinds[] = { [AR_KIND_OPEN] = "OPEN", [AR_KIND_EXEC] = "EXEC" };
    static const char *const verdicts[] = { [AR_VERDICT_ALLOW] = "ALLOW", [AR_VERDICT_DENY] = "DENY" };

    fprintf(f, "seq=%" PRIu64 "\ttimestamp_ns=%" PRIu64, (uint64_t)e->seq, (uint64_t)e->timestamp_ns);
    if (e->kind == AR_KIND_OPEN || e->kind == AR_KIND_EXEC)
        fprintf(f, "\tkind=%s", kinds[e->kind]);
    else
        fprintf(f, "\tkind=%d", (int)e->kind);
    if (e->verdict == AR_VERDICT_ALLOW || e->verdict == AR_VERDICT_DENY)
        fprintf(f, "\tverdict=%s", verdicts[e->verdict]);
    else
        fprintf(f, "\tverdict=%d", (int)e->verdict);
    fprintf(f, "\tdecision_ns=%" PRIu64 "\tpid=%d\tppid=%d\tuid=%u\tgid=%u\tflags=%u",
            (uint64_t)e->decision_ns, e->pid, e->ppid, e->uid, e->gid, e->flags);
    fputs("\texe_path=", f);
    put_path(f, e->exe_path ? e->exe_path : "");
    fputs("\ttarget_path=", f);
    put_path(f, e->target_path ? e->target_path : "");
    fputs("\tdigest=", f);
    for (u_int i = 0; i < e->digest.digest_len; i++)
        fprintf(f, "%02x", (unsigned char)e->digest.digest_val[i]);
    putc('\n', f);
    /* Flush every line so a reader (a test) sees it as soon as it is acked. */
    return fflush(f) == 0 && !ferror(f);
}

bool_t ar1_null_1_svc(void *argp, void *result, struct svc_req *rqstp)
{
    (void)argp; (void)result; (void)rqstp;
    return TRUE;
}

bool_t ar1_report_event_1_svc(ar_event *argp, ar_ack *result, struct svc_req *rqstp)
{
    (void)rqstp;
    n_events++;
    n_legacy++;
    result->seq = argp->seq;
    /* A failed write (disk full, closed pipe) is a sink error: the agent retries later. */
    result->status = (out == NULL || write_event(out, argp)) ? AR_STATUS_OK : AR_STATUS_SINK_ERROR;
    return TRUE;
}

int authrelay_prog_1_freeresult(SVCXPRT *transp, xdrproc_t xdr_result, caddr_t result)
{
    (void)transp;
    xdr_free(xdr_result, result);
    return 1;
}

bool_t ar2_null_2_svc(void *argp, void *result, struct svc_req *rqstp)
{
    (void)argp; (void)result; (void)rqstp;
    return TRUE;
}

/* Count only: no de-duplication, no output. Enough to measure the transport. */
bool_t ar2_report_batch_2_svc(ar_event_batch *argp, ar_batch_ack *result, struct svc_req *rqstp)
{
    (void)rqstp;
    u_int n = argp->events.events_len;
    uint64_t first = argp->header.first_seq;

    n_batches++;
    n_events += n;
    result->status = AR_STATUS_OK;
    result->accepted = n;
    result->duplicates = 0;
    /* An empty batch stores nothing new: report the seq just before it. */
    result->highest_seq = n > 0 ? first + n - 1 : (first > 0 ? first - 1 : 0);
    return TRUE;
}

bool_t ar2_get_stats_2_svc(void *argp, ar_stats *result, struct svc_req *rqstp)
{
    (void)argp; (void)rqstp;
    memset(result, 0, sizeof *result);
    result->started_ns = started_ns;
    result->batches = n_batches;
    result->events = n_events;
    result->legacy_events = n_legacy;
    return TRUE;
}

int authrelay_prog_2_freeresult(SVCXPRT *transp, xdrproc_t xdr_result, caddr_t result)
{
    (void)transp;
    xdr_free(xdr_result, result);
    return 1;
}

bool_t ar3_null_3_svc(void *argp, void *result, struct svc_req *rqstp)
{
    (void)argp; (void)result; (void)rqstp;
    return TRUE;
}

/* Count only, as version 2; the highest seq accounted for is the last event's or loss range's. */
bool_t ar3_report_batch_3_svc(ar3_event_batch *argp, ar_batch_ack *result, struct svc_req *rqstp)
{
    (void)rqstp;
    u_int n = argp->events.events_len;
    u_int losses = argp->header.losses.losses_len;
    uint64_t highest = argp->header.first_seq > 0 ? argp->header.first_seq - 1 : 0;
    if (n > 0 && argp->events.events_val[n - 1].seq > highest)
        highest = argp->events.events_val[n - 1].seq;
    if (losses > 0 && argp->header.losses.losses_val[losses - 1].last_seq > highest)
        highest = argp->header.losses.losses_val[losses - 1].last_seq;

    n_batches++;
    n_events += n;
    result->status = AR_STATUS_OK;
    result->accepted = n;
    result->duplicates = 0;
    result->highest_seq = highest;
    return TRUE;
}

bool_t ar3_get_stats_3_svc(void *argp, ar3_stats *result, struct svc_req *rqstp)
{
    memset(result, 0, sizeof *result);
    return ar2_get_stats_2_svc(argp, &result->totals, rqstp);
}

bool_t ar3_report_boot_end_3_svc(ar_boot_end *argp, ar_status *result, struct svc_req *rqstp)
{
    (void)argp; (void)rqstp;
    *result = AR_STATUS_OK;
    return TRUE;
}

int authrelay_prog_3_freeresult(SVCXPRT *transp, xdrproc_t xdr_result, caddr_t result)
{
    (void)transp;
    xdr_free(xdr_result, result);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Sockets. We create them ourselves so we choose address and port, and
 * hand them to svc_vc_create / svc_dg_create. */

/* Parses "tcp,udp,unix" into T_* bits; 0 on a bad name. */
static int parse_transports(const char *list)
{
    int bits = 0;
    char *copy = strdup(list);
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        if (strcmp(tok, "tcp") == 0) bits |= T_TCP;
        else if (strcmp(tok, "udp") == 0) bits |= T_UDP;
        else if (strcmp(tok, "unix") == 0 || strcmp(tok, "local") == 0) bits |= T_UNIX;
        else { bits = 0; break; }
    }
    free(copy);
    return bits;
}

/* "0x..." is hex, anything else decimal; false if not a whole number. */
static bool parse_ulong(const char *s, unsigned long *value)
{
    char *end;
    int base = (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10;
    errno = 0;
    *value = strtoul(s, &end, base);
    return errno == 0 && end != s && *end == '\0' && s[0] != '-';
}

static void print_listening(const struct listener *l, const char *unix_path)
{
    char host[INET6_ADDRSTRLEN] = "?";
    in_port_t port = 0;

    if (l->addr.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        port = ntohs(sin->sin_port);
        fprintf(stderr, PROG_NAME ": listening %s %s:%u\n", l->netid, host, (unsigned)port);
    } else if (l->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->addr;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        port = ntohs(sin6->sin6_port);
        fprintf(stderr, PROG_NAME ": listening %s [%s]:%u\n", l->netid, host, (unsigned)port);
    } else {
        fprintf(stderr, PROG_NAME ": listening unix %s\n", unix_path);
    }
}

/* A bound (and, for TCP, listening) inet socket on addr:port. */
static bool open_inet(struct listener *l, const char *addr, unsigned port, int socktype)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                              .ai_socktype = socktype };
    struct addrinfo *ai;
    char service[16];
    snprintf(service, sizeof service, "%u", port);
    int rc = getaddrinfo(addr, service, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, PROG_NAME ": bad bind address %s: %s\n", addr, gai_strerror(rc));
        return false;
    }

    bool v6 = ai->ai_family == AF_INET6;
    l->stream = socktype == SOCK_STREAM;
    l->netid = l->stream ? (v6 ? "tcp6" : "tcp") : (v6 ? "udp6" : "udp");
    l->fd = socket(ai->ai_family, socktype | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        fprintf(stderr, PROG_NAME ": socket %s: %s\n", l->netid, strerror(errno));
        freeaddrinfo(ai);
        return false;
    }
    /* A restarted collector can take its fixed port back despite TIME_WAIT. */
    int one = 1;
    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        fprintf(stderr, PROG_NAME ": cannot bind %s %s port %u: %s\n", l->netid, addr, port, strerror(errno));
        freeaddrinfo(ai);
        return false;
    }
    freeaddrinfo(ai);
    if (l->stream && listen(l->fd, SOMAXCONN) < 0) {
        fprintf(stderr, PROG_NAME ": listen %s: %s\n", l->netid, strerror(errno));
        return false;
    }
    return true;
}

/* True if a server accepts connections on the AF_LOCAL socket sun_addr. */
static bool unix_socket_is_live(const struct sockaddr_un *sun_addr)
{
    int probe = socket(AF_LOCAL, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && connect(probe, (const struct sockaddr *)sun_addr, sizeof *sun_addr) == 0;
    if (probe >= 0)
        close(probe);
    return live;
}

/* A listening AF_LOCAL stream socket at path. A socket file left by a
 * collector that died is replaced; a live server's is left alone. */
static bool open_unix(struct listener *l, const char *path)
{
    struct sockaddr_un sun_addr = { .sun_family = AF_LOCAL };
    if (strlen(path) >= sizeof sun_addr.sun_path) {
        fprintf(stderr, PROG_NAME ": unix socket path too long: %s\n", path);
        return false;
    }
    strcpy(sun_addr.sun_path, path);
    l->netid = "local";
    l->stream = true;
    l->fd = socket(AF_LOCAL, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        fprintf(stderr, PROG_NAME ": socket unix: %s\n", strerror(errno));
        return false;
    }
    int rc = bind(l->fd, (struct sockaddr *)&sun_addr, sizeof sun_addr);
    if (rc < 0 && errno == EADDRINUSE) {
        if (unix_socket_is_live(&sun_addr)) {
            fprintf(stderr, PROG_NAME ": cannot bind unix %s: another server is listening there\n", path);
            return false;
        }
        unlink(path);
        rc = bind(l->fd, (struct sockaddr *)&sun_addr, sizeof sun_addr);
    }
    if (rc < 0 || listen(l->fd, SOMAXCONN) < 0) {
        fprintf(stderr, PROG_NAME ": cannot bind unix %s: %s\n", path, strerror(errno));
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------- */
/* rpcbind */

/* clnt_spcreateerror's text up to its first newline (some RPC libraries end it with one). */
static const char *create_error(const char *what)
{
    static char text[256];
    snprintf(text, sizeof text, "%s", clnt_spcreateerror(what));
    text[strcspn(text, "\n")] = '\0';
    return text;
}

/* Tells rpcbind where (prog, vers) listens on this transport. rpcb_set only
 * says TRUE or FALSE; rpc_createerr tells "rpcbind unreachable" apart. */
static bool register_rpcbind(const struct listener *l, rpcprog_t prog, rpcvers_t vers)
{
    struct netconfig *nconf = getnetconfigent(l->netid);
    if (nconf == NULL) {
        fprintf(stderr, PROG_NAME ": no netconfig entry for %s (see /etc/netconfig)\n", l->netid);
        return false;
    }
    struct netbuf addr = { .maxlen = sizeof l->addr, .len = l->addrlen, .buf = (void *)&l->addr };
    rpc_createerr.cf_stat = RPC_SUCCESS;
    bool ok = rpcb_set(prog, vers, nconf, &addr);
    freenetconfigent(nconf);
    if (!ok) {
        if (rpc_createerr.cf_stat != RPC_SUCCESS)
            fprintf(stderr, PROG_NAME ": cannot reach rpcbind (%s): start rpcbind or use -n\n",
                    create_error("rpcb_set"));
        else
            fprintf(stderr, PROG_NAME ": rpcbind refused program 0x%lx version %lu on %s "
                    "(registered by another user?)\n", (unsigned long)prog, (unsigned long)vers, l->netid);
    }
    return ok;
}

/* ---------------------------------------------------------------------- */
/* Signals: the handler only writes a byte to a pipe that the poll loop
 * watches (svc_run has no way out but svc_exit, so we own the loop). */

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t ignored = write(signal_pipe[1], &b, 1);
    (void)ignored;
    errno = saved;
}

static void setup_signals(void)
{
    if (pipe(signal_pipe) < 0)
        die("pipe: %s", strerror(errno));
    for (int i = 0; i < 2; i++) {
        fcntl(signal_pipe[i], F_SETFL, O_NONBLOCK);
        fcntl(signal_pipe[i], F_SETFD, FD_CLOEXEC);
    }
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* A client that goes away mid-reply must not kill the server. */
    signal(SIGPIPE, SIG_IGN);
}

/* Polls libtirpc's fds plus the signal pipe until a signal arrives. */
static void serve(void)
{
    struct pollfd *fds = NULL;
    int cap = 0;

    for (;;) {
        /* svc_pollfd changes as connections come and go: copy it each time,
         * and put the signal pipe last so svc_getreq_poll never sees it. */
        int n = svc_max_pollfd;
        if (n + 1 > cap) {
            cap = 2 * (n + 1);
            fds = realloc(fds, (size_t)cap * sizeof *fds);
            if (fds == NULL)
                die("out of memory");
        }
        memcpy(fds, svc_pollfd, (size_t)n * sizeof *fds);
        fds[n] = (struct pollfd){ .fd = signal_pipe[0], .events = POLLIN };

        int ready = poll(fds, (nfds_t)n + 1, -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, PROG_NAME ": poll: %s\n", strerror(errno));
            break;
        }
        if (fds[n].revents != 0)
            break;
        svc_getreq_poll(fds, ready);
    }
    free(fds);
}

/* ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    rpcprog_t prog = AUTHRELAY_PROG;
    unsigned long value, port = 0;
    int transports = 0;
    bool serve_v2 = false, serve_v3 = false, use_rpcbind = true, quiet = false;
    const char *bind_addr = "127.0.0.1";
    const char *unix_path = DEFAULT_UNIX_PATH;
    const char *out_path = NULL;

    opterr = 0; /* we print our own messages, then the usage */
    int c;
    while ((c = getopt(argc, argv, ":23p:t:P:s:nb:o:q")) != -1) {
        switch (c) {
        case '2': serve_v2 = true; break;
        case '3': serve_v3 = true; break;
        case 'n': use_rpcbind = false; break;
        case 'q': quiet = true; break;
        case 'b': bind_addr = optarg; break;
        case 's': unix_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 'p':
            if (!parse_ulong(optarg, &value) || value > 0xffffffffUL)
                usage_error("bad program number: %s", optarg);
            prog = (rpcprog_t)value;
            break;
        case 'P':
            if (!parse_ulong(optarg, &port) || port > 65535)
                usage_error("bad port: %s", optarg);
            break;
        case 't': {
            int bits = parse_transports(optarg);
            if (bits == 0)
                usage_error("bad transport list: %s (want tcp, udp, unix)", optarg);
            transports |= bits;
            break;
        }
        case ':':
            usage_error("-%c needs a value", optopt);
        default:
            if (optopt == '?') {
                usage(stdout);
                return 0;
            }
            usage_error("unknown flag -%c", optopt);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument: %s", argv[optind]);
    if (transports == 0)
        transports = T_TCP | T_UDP;

    if (!quiet) {
        out = stdout;
        if (out_path && (out = fopen(out_path, "a")) == NULL)
            die("cannot open output: %s", strerror(errno));
    }
    started_ns = realtime_ns();
    setup_signals();

    /* Open every transport first; nothing is registered until all bound. */
    struct listener listeners[3] = { { .fd = -1 }, { .fd = -1 }, { .fd = -1 } };
    int count = 0;
    bool ok = true;
    bool unix_bound = false;
    if (transports & T_TCP)
        ok = open_inet(&listeners[count++], bind_addr, (unsigned)port, SOCK_STREAM);
    if (ok && (transports & T_UDP))
        ok = open_inet(&listeners[count++], bind_addr, (unsigned)port, SOCK_DGRAM);
    if (ok && (transports & T_UNIX))
        ok = unix_bound = open_unix(&listeners[count++], unix_path);

    for (int i = 0; ok && i < count; i++) {
        struct listener *l = &listeners[i];
        l->addrlen = sizeof l->addr;
        getsockname(l->fd, (struct sockaddr *)&l->addr, &l->addrlen);
        l->xprt = l->stream ? svc_vc_create(l->fd, 0, 0) : svc_dg_create(l->fd, UDP_BUFSIZE, UDP_BUFSIZE);
        if (l->xprt == NULL) {
            fprintf(stderr, PROG_NAME ": cannot create the %s RPC transport\n", l->netid);
            ok = false;
            break;
        }
        /* NULL netconfig: svc_reg only fills the dispatch table; we tell
         * rpcbind ourselves below, with the address we bound. */
        if (!svc_reg(l->xprt, prog, AUTHRELAY_V1, authrelay_prog_1, NULL) ||
            (serve_v2 && !svc_reg(l->xprt, prog, AUTHRELAY_V2, authrelay_prog_2, NULL)) ||
            (serve_v3 && !svc_reg(l->xprt, prog, AUTHRELAY_V3, authrelay_prog_3, NULL))) {
            fprintf(stderr, PROG_NAME ": svc_reg failed on %s\n", l->netid);
            ok = false;
            break;
        }
        print_listening(l, unix_path);
    }

    bool registered = false;
    if (ok && use_rpcbind) {
        /* Remove what a previous run may have left for this program (every
         * version: a stale v2 entry would hide our PROG_MISMATCH). */
        rpcb_unset(prog, AUTHRELAY_V1, NULL);
        rpcb_unset(prog, AUTHRELAY_V2, NULL);
        rpcb_unset(prog, AUTHRELAY_V3, NULL);
        registered = true;
        for (int i = 0; ok && i < count; i++) {
            ok = register_rpcbind(&listeners[i], prog, AUTHRELAY_V1) &&
                 (!serve_v2 || register_rpcbind(&listeners[i], prog, AUTHRELAY_V2)) &&
                 (!serve_v3 || register_rpcbind(&listeners[i], prog, AUTHRELAY_V3));
        }
    }

    if (ok) {
        fprintf(stderr, PROG_NAME ": ready\n");
        serve();
    }

    /* Leave nothing behind: rpcbind entries, transports, the socket file. */
    if (registered) {
        rpcb_unset(prog, AUTHRELAY_V1, NULL);
        if (serve_v2)
            rpcb_unset(prog, AUTHRELAY_V2, NULL);
        if (serve_v3)
            rpcb_unset(prog, AUTHRELAY_V3, NULL);
    }
    /* Not svc_unreg: it also calls rpcb_unset, even with -n, which would
     * remove another server's registration of the same program. */
    for (int i = 0; i < count; i++) {
        if (listeners[i].xprt)
            svc_destroy(listeners[i].xprt); /* closes the fd too */
        else if (listeners[i].fd >= 0)
            close(listeners[i].fd);
    }
    if (unix_bound)
        unlink(unix_path);
    if (out && out != stdout)
        fclose(out);

    if (!ok)
        return 1;
    fprintf(stderr, PROG_NAME ": events=%" PRIu64 " batches=%" PRIu64 "\n", n_events, n_batches);
    return 0;
}
