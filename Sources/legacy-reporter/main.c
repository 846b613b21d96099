/*
 * legacy-reporter: an AuthRelay reporter written in plain C from
 * rpcgen/authrelay.x, the way users of AuthRelay write them today: one
 * clnt_call (the rpcgen stub ar1_report_event_1) per event.
 *
 * It also has benchmark modes, so later benchmarks can compare the Swift
 * code against plain C in the same run:
 *   -B N  version 2: AR2_REPORT_BATCH with N events per call
 *   -D S  run for S seconds instead of a count of events
 *   -L    measure every call's latency and print percentiles
 *
 * Output: exactly one summary line on stdout at the end,
 *   legacy-reporter: calls=C events=E seconds=S calls_per_s=X events_per_s=Y
 *                    [p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..] errors=K
 * (one line; the percentile fields only with -L). calls and events count
 * acknowledged calls and their events; errors counts failed calls.
 * Errors go to stderr and name the events of the failed call, e.g.
 *   legacy-reporter: seq 5: RPC: Unable to receive; errno = Connection refused
 * (the first 10; after that they are only counted). Exit status: 0 when
 * every call succeeded, 1 otherwise (without -k the first failed call ends
 * the run), 2 for bad flags.
 */
#define _DEFAULT_SOURCE /* libtirpc's headers use BSD types (u_int, u_quad_t) */

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#include "authrelay.h"

#define PROG_NAME "legacy-reporter"
#define DIGEST_LEN 32
#define MAX_ERRORS_SHOWN 10

/* UDP buffers as large as one IPv4 datagram (65507, rounded down to a
 * multiple of 4), used with -P so a v2 batch fits in one datagram. */
#define UDP_BUFSIZE 65504

struct options {
    const char *host;
    const char *netid;      /* "tcp", "udp" or "unix" */
    const char *unix_path;  /* -s: connect this AF_LOCAL socket directly */
    unsigned port;          /* -P: direct tcp/udp, no rpcbind; 0 = ask rpcbind */
    rpcprog_t prog;
    uint64_t count;         /* -n: events to send */
    const char *exe_path;
    const char *target_fmt; /* the first "%d" becomes the event's index */
    uint64_t start_seq;
    unsigned timeout_ms;
    unsigned batch;         /* -B: events per AR2_REPORT_BATCH; 0 = version 1 */
    double duration;        /* -D: seconds; 0 = send count events */
    bool latency;           /* -L */
    bool keep_going;        /* -k */
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG_NAME " [-h HOST] [-t tcp|udp|unix] [-s PATH] [-P PORT] [-p PROGRAM]\n"
        "                       [-n COUNT] [-e PATH] [-f PATH] [-S START_SEQ] [-T TIMEOUT_MS]\n"
        "                       [-B N] [-D SECONDS] [-L] [-k]\n"
        "  -h HOST        collector host (default localhost)\n"
        "  -t NETID       tcp, udp or unix (default tcp)\n"
        "  -s PATH        connect this AF_LOCAL socket directly (implies -t unix);\n"
        "                 -t unix without -s asks rpcbind for the \"local\" address\n"
        "  -P PORT        connect tcp/udp to this port directly, without rpcbind\n"
        "  -p PROGRAM     program number, decimal or 0x hex (default 0x%X)\n"
        "  -n COUNT       events to send (default 10)\n"
        "  -e PATH        exe_path of the events (default /usr/bin/cat)\n"
        "  -f PATH        target_path; the first %%d becomes the event index (default /tmp/legacy/file-%%d)\n"
        "  -S START_SEQ   seq of the first event (default 1)\n"
        "  -T TIMEOUT_MS  timeout of each call (default 5000)\n"
        "  -B N           version 2: N events per AR2_REPORT_BATCH call (1..%d);\n"
        "                 over udp through rpcbind a call must fit in 8800 bytes\n"
        "  -D SECONDS     send for this long instead of -n events\n"
        "  -L             measure each call's latency; print p50 p90 p99 p99.9 max\n"
        "  -k             keep going after a failed call (count it, reconnect)\n"
        "  -?             this help\n",
        (unsigned)AUTHRELAY_PROG, AR_BATCH_MAX);
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

/* "0x..." is hex, anything else decimal; false if not a whole number. */
static bool parse_u64(const char *s, uint64_t *value)
{
    char *end;
    int base = (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    *value = v;
    return errno == 0 && end != s && *end == '\0' && s[0] != '-';
}

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An error message on stderr. With -k a dead collector fails every call:
 * show the first few, then only count them. */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
    static unsigned shown;
    if (shown > MAX_ERRORS_SHOWN)
        return;
    if (shown++ == MAX_ERRORS_SHOWN) {
        fputs(PROG_NAME ": further errors are counted, not shown\n", stderr);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG_NAME ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Text up to its first newline: some RPC libraries end error strings with one. */
static const char *chomp(const char *s)
{
    static char text[512];
    snprintf(text, sizeof text, "%s", s);
    text[strcspn(text, "\n")] = '\0';
    return text;
}

/* ---------------------------------------------------------------------- */
/* Connecting */

/* clnt_vc_create / clnt_dg_create on a socket we made: no rpcbind. */
static CLIENT *client_on_socket(int fd, const struct sockaddr *addr, socklen_t len,
                                const struct options *o, rpcvers_t vers, bool stream)
{
    struct netbuf nb = { .maxlen = len, .len = len, .buf = (void *)addr };
    CLIENT *clnt = stream ? clnt_vc_create(fd, &nb, o->prog, vers, 0, 0)
                          : clnt_dg_create(fd, &nb, o->prog, vers, UDP_BUFSIZE, UDP_BUFSIZE);
    if (clnt == NULL) {
        close(fd);
        return NULL;
    }
    /* The handle owns the socket from now on: clnt_destroy closes it. */
    clnt_control(clnt, CLSET_FD_CLOSE, NULL);
    if (!stream) {
        /* connect() the UDP socket: a dead collector's ICMP error then
         * fails the call at once instead of after the whole timeout. */
        int one = 1;
        clnt_control(clnt, CLSET_CONNECT, (char *)&one);
    }
    return clnt;
}

static CLIENT *connect_unix(const struct options *o, rpcvers_t vers)
{
    struct sockaddr_un addr = { .sun_family = AF_LOCAL };
    if (strlen(o->unix_path) >= sizeof addr.sun_path) {
        report("unix socket path too long: %s", o->unix_path);
        return NULL;
    }
    strcpy(addr.sun_path, o->unix_path);
    int fd = socket(AF_LOCAL, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        report("cannot connect to unix %s: %s", o->unix_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    return client_on_socket(fd, (struct sockaddr *)&addr, sizeof addr, o, vers, true);
}

static CLIENT *connect_inet(const struct options *o, rpcvers_t vers)
{
    bool stream = strcmp(o->netid, "tcp") == 0;
    struct addrinfo hints = { .ai_socktype = stream ? SOCK_STREAM : SOCK_DGRAM };
    struct addrinfo *list;
    char service[16];
    snprintf(service, sizeof service, "%u", o->port);
    int rc = getaddrinfo(o->host, service, &hints, &list);
    if (rc != 0) {
        report("cannot resolve %s: %s", o->host, gai_strerror(rc));
        return NULL;
    }
    /* The usual loop: the first address that takes the connection wins
     * (localhost may be ::1 first). UDP takes the first address. */
    int fd = -1, err = 0;
    struct addrinfo *ai;
    for (ai = list; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (!stream || connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        report("cannot connect to %s %s port %u: %s", o->netid, o->host, o->port, strerror(err));
        freeaddrinfo(list);
        return NULL;
    }
    if (stream) {
        /* clnt_create sets TCP_NODELAY on sockets it makes; we made this one.
         * Without it a small call waits for the previous reply's ACK. */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    CLIENT *clnt = client_on_socket(fd, ai->ai_addr, ai->ai_addrlen, o, vers, stream);
    freeaddrinfo(list);
    return clnt;
}

/* A client handle for version vers, with the per-call timeout set. */
static CLIENT *make_client(const struct options *o, rpcvers_t vers)
{
    CLIENT *clnt;
    bool is_unix = strcmp(o->netid, "unix") == 0;

    rpc_createerr.cf_stat = RPC_SUCCESS; /* so a stale error is not reported below */

    if (is_unix && o->unix_path) {
        clnt = connect_unix(o, vers);
    } else if (is_unix) {
        /* clnt_create(..., "unix") fails with RPC_UNKNOWNPROTO: the netid
         * in /etc/netconfig is "local", and clnt_tp_create takes it. */
        struct netconfig *nconf = getnetconfigent("local");
        clnt = nconf ? clnt_tp_create(o->host, o->prog, vers, nconf) : NULL;
        if (nconf)
            freenetconfigent(nconf);
    } else if (o->port != 0) {
        clnt = connect_inet(o, vers);
    } else {
        clnt = clnt_create(o->host, o->prog, vers, o->netid);
    }
    if (clnt == NULL) {
        if (rpc_createerr.cf_stat != RPC_SUCCESS)
            report("%s", chomp(clnt_spcreateerror("cannot create client")));
        return NULL;
    }

    /* CLSET_TIMEOUT overrides the 25 s the rpcgen stubs pass to clnt_call. */
    struct timeval tv = { .tv_sec = o->timeout_ms / 1000, .tv_usec = (o->timeout_ms % 1000) * 1000 };
    clnt_control(clnt, CLSET_TIMEOUT, (char *)&tv);
    if (strcmp(o->netid, "udp") != 0) {
        /* libtirpc's timeout covers only the wait for the reply; a write to a
         * stuck collector can block for seconds. Bound it the same way. */
        int fd;
        if (clnt_control(clnt, CLGET_FD, (char *)&fd))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return clnt;
}

/* ---------------------------------------------------------------------- */
/* Events */

/* Storage for the events of one call (one, or a batch of N). */
struct event_buffers {
    ar_event *events;
    char *targets;       /* n paths of target_cap bytes */
    size_t target_cap;
    char *digests;       /* n digests of DIGEST_LEN bytes */
    const char *fmt_head; /* target_fmt split around its first "%d" */
    int fmt_head_len;
    const char *fmt_tail; /* NULL when target_fmt has no "%d" */
    int pid, ppid;        /* read once: getpid() and getppid() are system */
    unsigned uid, gid;    /* calls, two per event would dominate a batch */
};

static void buffers_init(struct event_buffers *b, const struct options *o, unsigned n)
{
    const char *mark = strstr(o->target_fmt, "%d");
    b->fmt_head = o->target_fmt;
    b->fmt_head_len = mark ? (int)(mark - o->target_fmt) : (int)strlen(o->target_fmt);
    b->fmt_tail = mark ? mark + 2 : NULL;
    b->target_cap = strlen(o->target_fmt) + 24; /* room for a 64-bit number */
    b->events = calloc(n, sizeof *b->events);
    b->targets = calloc(n, b->target_cap);
    b->digests = calloc(n, DIGEST_LEN);
    b->pid = getpid();
    b->ppid = getppid();
    b->uid = getuid();
    b->gid = getgid();
    if (!b->events || !b->targets || !b->digests)
        die("out of memory");
}

/* Event number i (0-based) of this run: synthetic but deterministic
 * values, so a test can check every field the collector wrote. */
static void fill_event(struct event_buffers *b, unsigned slot, uint64_t i, const struct options *o)
{
    ar_event *e = &b->events[slot];
    char *target = b->targets + slot * b->target_cap;
    char *digest = b->digests + slot * DIGEST_LEN;

    if (b->fmt_tail)
        snprintf(target, b->target_cap, "%.*s%" PRIu64 "%s", b->fmt_head_len, b->fmt_head, i, b->fmt_tail);
    else
        snprintf(target, b->target_cap, "%s", b->fmt_head);
    for (unsigned k = 0; k < DIGEST_LEN; k++)
        digest[k] = (char)((i + k) & 0xff);

    e->seq = o->start_seq + i;
    e->timestamp_ns = clock_ns(CLOCK_REALTIME);
    e->kind = (i % 2 == 0) ? AR_KIND_OPEN : AR_KIND_EXEC;
    e->verdict = (i % 7 == 6) ? AR_VERDICT_DENY : AR_VERDICT_ALLOW; /* every 7th */
    e->decision_ns = 1000 + i;
    e->pid = b->pid;
    e->ppid = b->ppid;
    e->uid = b->uid;
    e->gid = b->gid;
    e->flags = 0;
    e->exe_path = (char *)o->exe_path;
    e->target_path = target;
    e->digest.digest_len = DIGEST_LEN;
    e->digest.digest_val = digest;
}

/* ---------------------------------------------------------------------- */
/* Latency samples */

struct samples {
    uint64_t *ns;
    size_t count, cap;
};

static void samples_add(struct samples *s, uint64_t ns)
{
    if (s->count == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 65536;
        s->ns = realloc(s->ns, s->cap * sizeof *s->ns);
        if (s->ns == NULL)
            die("out of memory");
    }
    s->ns[s->count++] = ns;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples, in microseconds. */
static double percentile_us(const struct samples *s, double p)
{
    if (s->count == 0)
        return 0;
    size_t rank = (size_t)((p / 100.0) * (double)s->count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > s->count)
        rank = s->count;
    return (double)s->ns[rank - 1] / 1000.0;
}

/* ---------------------------------------------------------------------- */

static void parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){
        .host = "localhost", .netid = "tcp", .prog = AUTHRELAY_PROG, .count = 10,
        .exe_path = "/usr/bin/cat", .target_fmt = "/tmp/legacy/file-%d",
        .start_seq = 1, .timeout_ms = 5000,
    };
    bool netid_given = false;
    uint64_t v;

    opterr = 0; /* we print our own messages, then the usage */
    int c;
    while ((c = getopt(argc, argv, ":h:t:s:P:p:n:e:f:S:T:B:D:Lk")) != -1) {
        switch (c) {
        case 'h': o->host = optarg; break;
        case 's': o->unix_path = optarg; break;
        case 'e': o->exe_path = optarg; break;
        case 'f': o->target_fmt = optarg; break;
        case 'L': o->latency = true; break;
        case 'k': o->keep_going = true; break;
        case 't':
            if (strcmp(optarg, "local") == 0)
                optarg = "unix";
            if (strcmp(optarg, "tcp") != 0 && strcmp(optarg, "udp") != 0 && strcmp(optarg, "unix") != 0)
                usage_error("bad transport: %s (want tcp, udp or unix)", optarg);
            o->netid = optarg;
            netid_given = true;
            break;
        case 'P':
            if (!parse_u64(optarg, &v) || v == 0 || v > 65535)
                usage_error("bad port: %s", optarg);
            o->port = (unsigned)v;
            break;
        case 'p':
            if (!parse_u64(optarg, &v) || v > 0xffffffffu)
                usage_error("bad program number: %s", optarg);
            o->prog = (rpcprog_t)v;
            break;
        case 'n':
            if (!parse_u64(optarg, &o->count))
                usage_error("bad count: %s", optarg);
            break;
        case 'S':
            if (!parse_u64(optarg, &o->start_seq))
                usage_error("bad start seq: %s", optarg);
            break;
        case 'T':
            if (!parse_u64(optarg, &v) || v == 0 || v > 3600000)
                usage_error("bad timeout: %s ms", optarg);
            o->timeout_ms = (unsigned)v;
            break;
        case 'B':
            if (!parse_u64(optarg, &v) || v == 0 || v > AR_BATCH_MAX)
                usage_error("bad batch size: %s (1..%d)", optarg, AR_BATCH_MAX);
            o->batch = (unsigned)v;
            break;
        case 'D': {
            char *end;
            o->duration = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(o->duration > 0))
                usage_error("bad duration: %s seconds", optarg);
            break;
        }
        case ':':
            usage_error("-%c needs a value", optopt);
        default:
            if (optopt == '?') {
                usage(stdout);
                exit(0);
            }
            usage_error("unknown flag -%c", optopt);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument: %s", argv[optind]);
    if (o->unix_path && !netid_given)
        o->netid = "unix";
    if (o->unix_path && strcmp(o->netid, "unix") != 0)
        usage_error("-s PATH needs -t unix");
    if (o->port && strcmp(o->netid, "unix") == 0)
        usage_error("-P PORT is for tcp and udp; use -s PATH for unix");
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(argc, argv, &o);

    /* A collector that dies mid-call must give us an error, not kill us. */
    signal(SIGPIPE, SIG_IGN);

    const bool batch_mode = o.batch > 0;
    const rpcvers_t vers = batch_mode ? AUTHRELAY_V2 : AUTHRELAY_V1;
    const unsigned per_call = batch_mode ? o.batch : 1;

    struct event_buffers bufs;
    buffers_init(&bufs, &o, per_call);
    char boot_id[32];
    snprintf(boot_id, sizeof boot_id, "boot-%ld", (long)getpid());
    ar_event_batch batch = { .header = { .agent_id = PROG_NAME, .boot_id = boot_id } };
    batch.events.events_val = bufs.events;

    /* Connect before the clock starts. A failure is handled in the loop,
     * like a lost connection: counted, then retried (-k) or the end. */
    CLIENT *clnt = make_client(&o, vers);

    struct samples lat = { 0 };
    uint64_t calls = 0, events = 0, errors = 0;
    uint64_t next = 0; /* index of the next event; its seq is start_seq + next */
    const uint64_t start = clock_ns(CLOCK_MONOTONIC);
    const uint64_t deadline = start + (uint64_t)(o.duration * 1e9);
    uint64_t now = start;

    while (o.duration > 0 ? now < deadline : next < o.count) {
        unsigned n = per_call;
        if (o.duration == 0 && o.count - next < n)
            n = (unsigned)(o.count - next);
        for (unsigned k = 0; k < n; k++)
            fill_event(&bufs, k, next + k, &o);
        const uint64_t seq = o.start_seq + next;
        next += n;

        char what[64]; /* names the events of this call in error messages */
        if (n == 1)
            snprintf(what, sizeof what, "seq %" PRIu64, seq);
        else
            snprintf(what, sizeof what, "seq %" PRIu64 "..%" PRIu64, seq, seq + n - 1);

        if (clnt == NULL) {
            /* No handle (the message is out already): this call fails. */
            errors++;
            if (!o.keep_going)
                break;
            nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL); /* do not spin */
            clnt = make_client(&o, vers);
            now = clock_ns(CLOCK_MONOTONIC);
            continue;
        }

        enum clnt_stat stat;
        ar_status status;
        const uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
        if (batch_mode) {
            ar_batch_ack ack;
            memset(&ack, 0, sizeof ack);
            batch.header.first_seq = seq;
            batch.events.events_len = n;
            stat = ar2_report_batch_2(&batch, &ack, clnt);
            status = ack.status;
        } else {
            ar_ack ack;
            memset(&ack, 0, sizeof ack);
            stat = ar1_report_event_1(&bufs.events[0], &ack, clnt);
            status = ack.status;
        }
        now = clock_ns(CLOCK_MONOTONIC);

        if (stat == RPC_SUCCESS && status == AR_STATUS_OK) {
            calls++;
            events += n;
            if (o.latency)
                samples_add(&lat, now - t0);
            continue;
        }

        errors++;
        if (stat != RPC_SUCCESS)
            report("%s", chomp(clnt_sperror(clnt, what)));
        else
            report("%s: collector answered status %d", what, (int)status);
        if (!o.keep_going)
            break;
        if (stat != RPC_SUCCESS) {
            /* libtirpc never reconnects, and a UDP handle that timed out
             * stays broken: start over with a new handle. */
            clnt_destroy(clnt);
            clnt = make_client(&o, vers);
        }
    }

    const double seconds = (double)(now - start) / 1e9;
    printf(PROG_NAME ": calls=%" PRIu64 " events=%" PRIu64 " seconds=%.6f calls_per_s=%.0f events_per_s=%.0f",
           calls, events, seconds,
           seconds > 0 ? (double)calls / seconds : 0.0,
           seconds > 0 ? (double)events / seconds : 0.0);
    if (o.latency) {
        qsort(lat.ns, lat.count, sizeof *lat.ns, compare_u64);
        printf(" p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f",
               percentile_us(&lat, 50), percentile_us(&lat, 90), percentile_us(&lat, 99),
               percentile_us(&lat, 99.9), percentile_us(&lat, 100));
    }
    printf(" errors=%" PRIu64 "\n", errors);

    if (clnt)
        clnt_destroy(clnt);
    free(lat.ns);
    free(bufs.events);
    free(bufs.targets);
    free(bufs.digests);
    return errors == 0 ? 0 : 1;
}
