/* concurrent.c — N requests in flight at once against one server, from a
 * single thread.
 *
 * Every connection is a non-blocking socket in one epoll set; each sends one
 * GET as soon as it is open and waits for its whole response
 * (Content-Length), so N requests can be outstanding with no thread per
 * request on this side either. Connections are opened a batch at a time,
 * with whatever is ready served in between, so the first requests leave
 * while the last connections are still being made. Run against mockcloud
 * with a fixed 1 s latency rule, the wall time from the first connect to the
 * last response shows whether delayed requests are parked (about 1 s plus
 * the time it takes to open N connections) or hold a thread each (many
 * seconds). It also watches the server's memory (VmHWM/VmRSS from
 * /proc/PID/status) and the kernel's listen-queue overflow counters, which
 * explain a straggler that needed a SYN retransmit (1 s+ later).
 *
 * Usage: concurrent --connect HOST:PORT --path PATH [--token T] [--pid PID]
 *                   [-n N] [--batch B --gap-us US] [--timeout S]
 * Prints a human summary and one "RESULT key=value …" line; exits 0 when
 * the run could be made (whatever the figures), 1 when not, 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum conn_state { C_IDLE = 0, C_CONNECTING, C_READING, C_DONE, C_FAILED };

/* Why a request failed; counted separately in the summary. */
enum fail_reason { F_SOCKET = 0, F_CONNECT, F_SEND, F_RESET, F_EOF, F_PARSE, F_TIMEOUT, F_COUNT };
static const char *const fail_names[F_COUNT] = {"socket", "connect", "send",   "reset",
                                                "eof",    "parse",   "timeout"};

typedef struct conn {
    int fd;
    enum conn_state state;
    int status;            /* HTTP status, once the status line is in */
    int64_t t_start;       /* ns, connect() called */
    int64_t t_established; /* ns, writable (handshake done) */
    int64_t t_done;        /* ns, last byte of the response */
    long body_left;        /* -1 until the headers are in */
    unsigned hlen;         /* bytes of headers buffered */
    char head[768];        /* the response headers (the body is only counted) */
} conn;

typedef struct options {
    struct sockaddr_in addr;
    const char *hostport;
    const char *path;
    const char *token;
    long pid;
    unsigned n;
    unsigned batch;  /* connects per burst; 0 = all before any send */
    unsigned gap_us; /* pause between bursts */
    unsigned timeout_s;
} options;

/* Server-side figures sampled while the run is in flight. */
typedef struct proc_sample {
    long hwm_kib, rss_kib, threads;
} proc_sample;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: concurrent --connect HOST:PORT --path PATH [--token T] [--pid PID]\n"
                 "                  [-n N] [--batch B --gap-us US] [--timeout S]\n"
                 "  --connect HOST:PORT  IPv4 server address\n"
                 "  --path PATH          request target, e.g. /v1/instances/i-1\n"
                 "  --token T            sent as \"Authorization: Bearer T\"\n"
                 "  --pid PID            the server's pid: report its VmHWM/VmRSS/threads\n"
                 "  -n N                 concurrent requests (default 10000)\n"
                 "  --batch B            open B connections, then serve whatever is ready before\n"
                 "                       the next B (default 64); 0 opens all before sending any\n"
                 "  --gap-us US          pause between batches in microseconds (default 0); paces\n"
                 "                       connects if the server's accept queue overflows\n"
                 "  --timeout S          give up on requests after S seconds (default 15)\n");
}

static int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || *s == '-' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int parse_hostport(const char *s, struct sockaddr_in *sa)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || colon - s >= 64) return -1;
    char host[64];
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    unsigned long port;
    if (parse_ulong(colon + 1, 1, 65535, &port) != 0) return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Reads VmHWM, VmRSS and Threads of pid. Returns 0 or -1 (gone, no access). */
static int read_proc(long pid, proc_sample *out)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    *out = (proc_sample){-1, -1, -1};
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0)
            out->hwm_kib = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmRSS:", 6) == 0)
            out->rss_kib = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "Threads:", 8) == 0)
            out->threads = strtol(line + 8, NULL, 10);
    }
    fclose(f);
    return 0;
}

/* TcpExt ListenOverflows + ListenDrops, system-wide (-1 when unreadable):
 * each is a handshake the kernel dropped because an accept queue was full,
 * which costs the client a 1 s SYN retransmit. */
static void read_listen_drops(long *overflows, long *drops)
{
    *overflows = *drops = -1;
    FILE *f = fopen("/proc/net/netstat", "r");
    if (!f) return;
    char names[4096], values[4096];
    while (fgets(names, sizeof names, f) && fgets(values, sizeof values, f)) {
        if (strncmp(names, "TcpExt:", 7) != 0) continue;
        char *sn, *sv;
        char *n = strtok_r(names, " \n", &sn), *v = strtok_r(values, " \n", &sv);
        while (n && v) {
            if (strcmp(n, "ListenOverflows") == 0) *overflows = strtol(v, NULL, 10);
            if (strcmp(n, "ListenDrops") == 0) *drops = strtol(v, NULL, 10);
            n = strtok_r(NULL, " \n", &sn);
            v = strtok_r(NULL, " \n", &sv);
        }
        break;
    }
    fclose(f);
}

/* ------------------------------------------------------------ connections */

static void conn_fail(int ep, conn *c, enum fail_reason why, unsigned fails[F_COUNT])
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->state = C_FAILED;
    c->t_done = now_ns();
    fails[why]++;
}

/* The response is complete. The close is abortive (RST) so that N sockets
 * in TIME_WAIT don't crowd the ephemeral port range, which makes connect()
 * slower for this run's stragglers and for the next run. */
static void conn_finish(int ep, conn *c)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = C_DONE;
    c->t_done = now_ns();
}

/* Sends the request and waits for the reply. The socket may still be
 * connecting: 1 means "try again when writable". Returns 0 when sent, -1
 * (and the connection failed) otherwise. */
static int conn_write(int ep, conn *c, uint64_t idx, bool added, const char *req, size_t reqlen,
                      unsigned fails[F_COUNT])
{
    ssize_t n = send(c->fd, req, reqlen, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)) return 1;
    if (n < 0) {
        conn_fail(ep, c, errno == ECONNREFUSED || errno == EPIPE ? F_CONNECT : F_SEND, fails);
        return -1;
    }
    if ((size_t)n != reqlen) { /* a fresh socket takes ~200 bytes whole */
        conn_fail(ep, c, F_SEND, fails);
        return -1;
    }
    c->t_established = now_ns();
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = idx};
    if (epoll_ctl(ep, added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        conn_fail(ep, c, F_SOCKET, fails);
        return -1;
    }
    c->state = C_READING;
    return 0;
}

/* Starts a non-blocking connect and, when loopback has already completed
 * the handshake (the usual case), sends the request at once; else waits
 * for the socket to become writable. The epoll data is the index. */
static void conn_start(int ep, conn *c, uint64_t idx, const options *o, const char *req,
                       size_t reqlen, unsigned fails[F_COUNT])
{
    c->t_start = now_ns();
    c->body_left = -1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_fail(ep, c, F_SOCKET, fails);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (const struct sockaddr *)&o->addr, sizeof o->addr) != 0 &&
        errno != EINPROGRESS) {
        conn_fail(ep, c, F_CONNECT, fails);
        return;
    }
    if (conn_write(ep, c, idx, false, req, reqlen, fails) <= 0) return;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = idx};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        conn_fail(ep, c, F_SOCKET, fails);
        return;
    }
    c->state = C_CONNECTING;
}

/* The handshake finished (or failed) after all. */
static void conn_send(int ep, conn *c, uint64_t idx, const char *req, size_t reqlen,
                      unsigned fails[F_COUNT])
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        conn_fail(ep, c, F_CONNECT, fails);
        return;
    }
    if (conn_write(ep, c, idx, true, req, reqlen, fails) > 0) conn_fail(ep, c, F_SEND, fails);
}

/* Parses the buffered head once it holds "\r\n\r\n". Returns 1 when parsed,
 * 0 when more is needed, -1 on a malformed reply. */
static int parse_head(conn *c, size_t *body_start)
{
    char *end = memmem(c->head, c->hlen, "\r\n\r\n", 4);
    if (!end) return c->hlen == sizeof c->head ? -1 : 0;
    *end = '\0';
    if (sscanf(c->head, "HTTP/1.%*1d %3d", &c->status) != 1) return -1;
    c->body_left = 0;
    for (char *p = strstr(c->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0) c->body_left = strtol(p + 17, NULL, 10);
    }
    *body_start = (size_t)(end + 4 - c->head);
    return 1;
}

static void conn_read(int ep, conn *c, unsigned fails[F_COUNT])
{
    for (;;) {
        char buf[4096];
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR) continue;
            conn_fail(ep, c, errno == ECONNRESET ? F_RESET : F_EOF, fails);
            return;
        }
        if (n == 0) {
            conn_fail(ep, c, F_EOF, fails);
            return;
        }
        size_t used = 0;
        if (c->body_left < 0) {
            size_t room = sizeof c->head - c->hlen;
            size_t take = (size_t)n < room ? (size_t)n : room;
            memcpy(c->head + c->hlen, buf, take);
            unsigned before = c->hlen;
            c->hlen += (unsigned)take;
            size_t body_start;
            int rc = parse_head(c, &body_start);
            if (rc < 0) {
                conn_fail(ep, c, F_PARSE, fails);
                return;
            }
            if (rc == 0) continue;
            used = body_start - before;
        }
        c->body_left -= (long)((size_t)n - used);
        if (c->body_left <= 0) {
            conn_finish(ep, c);
            return;
        }
    }
}

/* When the requests went out (sent) or their responses came back, in
 * 100 ms bins from the first connect: where the wall time goes. */
static void print_timeline(const char *what, const conn *conns, unsigned n, int64_t t0, bool sent)
{
    enum { BINS = 64 };
    unsigned bins[BINS] = {0};
    for (unsigned i = 0; i < n; i++) {
        const conn *c = &conns[i];
        if (sent ? c->t_established == 0 : c->state != C_DONE) continue;
        int64_t b = ((sent ? c->t_established : c->t_done) - t0) / 100000000;
        bins[b < BINS ? b : BINS - 1]++;
    }
    printf("%s, per 100 ms from the first connect:", what);
    for (int b = 0; b < BINS; b++)
        if (bins[b]) printf(" %d.%ds:%u", b / 10, b % 10, bins[b]);
    printf("\n");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

/* Raises the soft fd limit to the hard one; N sockets need N fds. */
static void raise_fd_limit(unsigned need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need + 16)
        fprintf(stderr,
                "concurrent: warning: fd limit %lu is below %u connections; raise it "
                "(ulimit -n) or lower -n\n",
                (unsigned long)rl.rlim_cur, need);
}

int main(int argc, char **argv)
{
    options o = {.n = 10000, .batch = 64, .timeout_s = 15, .pid = -1};
    static const struct option lopts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"path", required_argument, NULL, 'P'},
        {"token", required_argument, NULL, 't'},
        {"pid", required_argument, NULL, 'p'},
        {"batch", required_argument, NULL, 'b'},
        {"gap-us", required_argument, NULL, 'g'},
        {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    unsigned long v;
    while ((ch = getopt_long(argc, argv, "n:", lopts, NULL)) != -1) {
        const char *bad = NULL;
        switch (ch) {
        case 'c':
            o.hostport = optarg;
            if (parse_hostport(optarg, &o.addr) != 0) bad = "--connect: expected IPV4:PORT";
            break;
        case 'P':
            o.path = optarg;
            break;
        case 't':
            o.token = optarg;
            break;
        case 'p':
            if (parse_ulong(optarg, 1, 4194304, &v) != 0) bad = "--pid: expected a process id";
            o.pid = (long)v;
            break;
        case 'n':
            if (parse_ulong(optarg, 1, 1000000, &v) != 0) bad = "-n: expected 1..1000000";
            o.n = (unsigned)v;
            break;
        case 'b':
            if (parse_ulong(optarg, 0, 1000000, &v) != 0) bad = "--batch: expected 0..1000000";
            o.batch = (unsigned)v;
            break;
        case 'g':
            if (parse_ulong(optarg, 0, 10000000, &v) != 0) bad = "--gap-us: expected 0..10000000";
            o.gap_us = (unsigned)v;
            break;
        case 'T':
            if (parse_ulong(optarg, 1, 3600, &v) != 0) bad = "--timeout: expected 1..3600 seconds";
            o.timeout_s = (unsigned)v;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "concurrent: %s (got \"%s\")\n", bad, optarg);
            usage(stderr);
            return 2;
        }
    }
    if (!o.hostport || !o.path || optind != argc) {
        fprintf(stderr, "concurrent: %s\n",
                optind != argc ? "unexpected argument" : "--connect and --path are required");
        usage(stderr);
        return 2;
    }

    raise_fd_limit(o.n);
    char req[1024];
    int reqlen =
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n%s%s%sAccept: */*\r\n\r\n",
                 o.path, o.hostport, o.token ? "Authorization: Bearer " : "",
                 o.token ? o.token : "", o.token ? "\r\n" : "");
    if (reqlen <= 0 || reqlen >= (int)sizeof req) {
        fprintf(stderr, "concurrent: --path or --token too long\n");
        return 2;
    }

    conn *conns = calloc(o.n, sizeof *conns);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || ep < 0) {
        fprintf(stderr, "concurrent: cannot set up: %s\n",
                conns ? strerror(errno) : "out of memory");
        free(conns);
        return 1;
    }
    for (unsigned i = 0; i < o.n; i++) conns[i].fd = -1;

    proc_sample before = {-1, -1, -1}, peak = {-1, -1, -1}, s;
    if (o.pid > 0 && read_proc(o.pid, &before) != 0) {
        fprintf(stderr, "concurrent: cannot read /proc/%ld/status: %s\n", o.pid, strerror(errno));
        free(conns);
        close(ep);
        return 1;
    }
    long ovf0, drop0, ovf1, drop1;
    read_listen_drops(&ovf0, &drop0);

    unsigned fails[F_COUNT] = {0};
    unsigned started = 0, finished = 0;
    const int64_t t0 = now_ns(), deadline = t0 + (int64_t)o.timeout_s * 1000000000;
    int64_t next_batch = t0, last_sample = 0, t_last_connect = t0;
    struct epoll_event evs[512];

    while (finished < o.n) {
        int64_t t = now_ns();
        if (started < o.n && t >= next_batch) {
            unsigned burst = o.batch ? o.batch : o.n;
            for (unsigned k = 0; k < burst && started < o.n; k++, started++) {
                conn_start(ep, &conns[started], started, &o, req, (size_t)reqlen, fails);
                if (conns[started].state == C_FAILED) finished++;
            }
            t_last_connect = now_ns();
            next_batch = t_last_connect + (int64_t)o.gap_us * 1000;
        }
        if (t >= deadline) break;
        if (o.pid > 0 && t - last_sample > 20000000 && read_proc(o.pid, &s) == 0) {
            last_sample = t;
            if (s.rss_kib > peak.rss_kib) peak.rss_kib = s.rss_kib;
            if (s.threads > peak.threads) peak.threads = s.threads;
        }
        int wait_ms = 20;
        if (started < o.n) {
            int64_t until = (next_batch - now_ns()) / 1000000;
            wait_ms = until < 0 ? 0 : (until < wait_ms ? (int)until : wait_ms);
        }
        int nev = epoll_wait(ep, evs, (int)(sizeof evs / sizeof evs[0]), wait_ms);
        if (nev < 0 && errno != EINTR) {
            fprintf(stderr, "concurrent: epoll_wait: %s\n", strerror(errno));
            break;
        }
        for (int i = 0; i < nev; i++) {
            conn *c = &conns[evs[i].data.u64];
            if (c->state == C_CONNECTING) {
                conn_send(ep, c, evs[i].data.u64, req, (size_t)reqlen, fails);
            } else if (c->state == C_READING) {
                conn_read(ep, c, fails);
            }
            if (c->state == C_DONE || c->state == C_FAILED) finished++;
        }
    }
    const int64_t t_end = now_ns();
    for (unsigned i = 0; i < o.n; i++) {
        if (conns[i].state == C_CONNECTING || conns[i].state == C_READING ||
            conns[i].state == C_IDLE)
            conn_fail(ep, &conns[i], F_TIMEOUT, fails);
    }
    read_listen_drops(&ovf1, &drop1);
    if (o.pid > 0 && read_proc(o.pid, &s) == 0) {
        peak.hwm_kib = s.hwm_kib;
        if (s.rss_kib > peak.rss_kib) peak.rss_kib = s.rss_kib;
        if (s.threads > peak.threads) peak.threads = s.threads;
    }

    /* Figures over the requests that completed. */
    unsigned ok = 0, other = 0, slow_connects = 0;
    int64_t last_done = t0;
    int64_t *lat = malloc((size_t)o.n * sizeof *lat);
    for (unsigned i = 0; i < o.n; i++) {
        const conn *c = &conns[i];
        if (c->state != C_DONE) continue;
        if (c->status == 200)
            ok++;
        else
            other++;
        if (c->t_done > last_done) last_done = c->t_done;
        if (c->t_established - c->t_start > 900000000) slow_connects++;
        if (lat) lat[ok + other - 1] = c->t_done - c->t_start;
    }
    unsigned done = ok + other, failed = o.n - done;
    int64_t p50 = 0, p99 = 0, lmax = 0, lmin = 0;
    if (lat && done) {
        qsort(lat, done, sizeof *lat, cmp_i64);
        lmin = lat[0];
        p50 = lat[done / 2];
        p99 = lat[(size_t)((double)done * 0.99) < done ? (size_t)((double)done * 0.99) : done - 1];
        lmax = lat[done - 1];
    }
    free(lat);
    const int64_t wall = (done ? last_done : t_end) - t0;

    printf("concurrent: %u requests to http://%s%s\n", o.n, o.hostport, o.path);
    printf("  wall time, first connect to last response: %.1f ms\n", ms(wall));
    printf("  connects issued over %.1f ms (%s)\n", ms(t_last_connect - t0),
           o.batch ? "interleaved with sends" : "all before any send");
    print_timeline("  requests sent", conns, o.n, t0, true);
    print_timeline("  responses in ", conns, o.n, t0, false);
    printf("  completed %u (status 200: %u, other: %u), failed %u", done, ok, other, failed);
    for (int r = 0; r < F_COUNT; r++)
        if (fails[r]) printf(" %s=%u", fail_names[r], fails[r]);
    printf("\n  per request (connect to response): min %.1f, p50 %.1f, p99 %.1f, max %.1f ms\n",
           ms(lmin), ms(p50), ms(p99), ms(lmax));
    printf("  connects that took > 0.9 s (SYN retransmitted): %u\n", slow_connects);
    if (ovf0 >= 0)
        printf("  kernel TcpExt ListenOverflows +%ld, ListenDrops +%ld (system-wide)\n",
               ovf1 - ovf0, drop1 - drop0);
    if (o.pid > 0)
        printf("  server pid %ld: VmHWM %ld KiB (before %ld), VmRSS peak %ld KiB, threads peak "
               "%ld (before %ld)\n",
               o.pid, peak.hwm_kib, before.hwm_kib, peak.rss_kib, peak.threads, before.threads);
    printf("RESULT n=%u completed=%u ok=%u other=%u failed=%u wall_ms=%.1f connect_ms=%.1f "
           "p50_ms=%.1f p99_ms=%.1f max_ms=%.1f slow_connects=%u listen_overflows=%ld "
           "hwm_kib=%ld hwm_before_kib=%ld rss_peak_kib=%ld threads_peak=%ld\n",
           o.n, done, ok, other, failed, ms(wall), ms(t_last_connect - t0), ms(p50), ms(p99),
           ms(lmax), slow_connects, ovf0 >= 0 ? ovf1 - ovf0 : -1, peak.hwm_kib, before.hwm_kib,
           peak.rss_kib, peak.threads);

    free(conns);
    close(ep);
    return 0;
}
