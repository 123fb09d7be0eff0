/* ceiling.c — the fastest server libmicrohttpd can be on this machine, for
 * comparison with mockcloud.
 *
 * It answers every request with one fixed reply, read at start from a file
 * holding a raw HTTP response (what `curl -si` printed for a real mockcloud
 * reply): the same status, the same application headers, the same body. The
 * daemon is set up as lib/httpd.c sets it up (internal polling threads,
 * epoll, suspend/resume allowed, thread count, connection limit, per-connection
 * memory, listen backlog 4096) and the response object is built once
 * and shared, so what is left per request is libmicrohttpd's own work:
 * parse, queue, send. mockcloud's requests/s divided by this one's is the
 * share the application keeps.
 *
 * Usage: ceiling --reply FILE [--listen HOST:PORT] [--port-file F]
 *                [--threads N] [--max-connections N] [--conn-memory BYTES]
 * Runs until SIGINT or SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <microhttpd.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_Result_t;
#else
typedef enum MHD_Result MHD_Result_t;
#endif

/* The reply, parsed once; the response object is shared by all requests. */
typedef struct reply {
    unsigned status;
    struct MHD_Response *response;
    size_t nheaders;
    size_t body_len;
} reply;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: ceiling --reply FILE [--listen HOST:PORT] [--port-file F]\n"
                 "               [--threads N] [--max-connections N] [--conn-memory BYTES]\n"
                 "  --reply F            raw HTTP response to send (status line, headers,\n"
                 "                       blank line, body), e.g. from `curl -si URL > F`\n"
                 "  --listen HOST:PORT   IPv4 address to bind (default 127.0.0.1:0, a free port)\n"
                 "  --port-file F        write the bound port + newline to F once listening\n"
                 "  --threads N          polling threads, as mockcloud's --threads (default 2)\n"
                 "  --max-connections N  as mockcloud's --max-connections (default 16384)\n"
                 "  --conn-memory BYTES  libmicrohttpd's per-connection pool (default 16384,\n"
                 "                       lib/httpd.c's default)\n");
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ceiling: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *data = malloc(cap + 1);
    while (data) {
        n += fread(data + n, 1, cap - n, f);
        if (n < cap) break;
        char *grown = realloc(data, cap * 2 + 1);
        if (!grown) {
            free(data);
            data = NULL;
            break;
        }
        data = grown;
        cap *= 2;
    }
    if (!data || ferror(f)) {
        fprintf(stderr, "ceiling: cannot read %s: %s\n", path,
                data ? strerror(errno) : "out of memory");
        free(data);
        fclose(f);
        return NULL;
    }
    fclose(f);
    data[n] = '\0';
    *len = n;
    return data;
}

/* libmicrohttpd writes these itself; copying them would send them twice. */
static bool header_is_daemons(const char *name, size_t len)
{
    static const char *const own[] = {"Date", "Content-Length", "Connection", "Transfer-Encoding",
                                      "Keep-Alive"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strlen(own[i]) == len && strncasecmp(own[i], name, len) == 0) return true;
    return false;
}

/* Finds the end of the line at p (CRLF or LF); *next is the start of the
 * following line. */
static const char *line_end(const char *p, const char *end, const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) {
        *next = end;
        return end;
    }
    *next = nl + 1;
    return (nl > p && nl[-1] == '\r') ? nl - 1 : nl;
}

/* Parses "HTTP/1.x NNN ...", header lines, an empty line, then the body.
 * Returns 0, or -1 with a message naming the file and line. */
static int parse_reply(const char *path, const char *data, size_t len, reply *out)
{
    const char *p = data, *end = data + len, *next;
    const char *eol = line_end(p, end, &next);
    unsigned status = 0;
    if (eol - p < 12 || strncmp(p, "HTTP/1.", 7) != 0 || sscanf(p + 9, "%3u", &status) != 1 ||
        status < 100 || status > 599) {
        fprintf(stderr,
                "ceiling: %s:1: expected a status line like \"HTTP/1.1 200 OK\"; "
                "capture the reply with `curl -si URL > FILE`\n",
                path);
        return -1;
    }
    p = next;

    /* Headers are kept until the body is known, since the response object
     * needs the body first. */
    struct {
        const char *name, *value;
        size_t nlen, vlen;
    } headers[64];
    size_t nh = 0;
    unsigned line = 1;
    for (;;) {
        line++;
        if (p >= end) {
            fprintf(stderr, "ceiling: %s:%u: no blank line after the headers\n", path, line);
            return -1;
        }
        eol = line_end(p, end, &next);
        if (eol == p) break;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p) {
            fprintf(stderr, "ceiling: %s:%u: header line without \"Name: value\"\n", path, line);
            return -1;
        }
        if (!header_is_daemons(p, (size_t)(colon - p))) {
            if (nh == sizeof headers / sizeof headers[0]) {
                fprintf(stderr, "ceiling: %s:%u: more than %zu headers\n", path, line, nh);
                return -1;
            }
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            headers[nh].name = p;
            headers[nh].nlen = (size_t)(colon - p);
            headers[nh].value = v;
            headers[nh].vlen = (size_t)(eol - v);
            nh++;
        }
        p = next;
    }
    p = next;

    out->status = status;
    out->body_len = (size_t)(end - p);
    out->nheaders = nh;
    out->response =
        MHD_create_response_from_buffer(out->body_len, (void *)p, MHD_RESPMEM_MUST_COPY);
    if (!out->response) {
        fprintf(stderr, "ceiling: cannot create the response (out of memory)\n");
        return -1;
    }
    for (size_t i = 0; i < nh; i++) {
        char name[256], value[1024];
        if (headers[i].nlen >= sizeof name || headers[i].vlen >= sizeof value) {
            fprintf(stderr, "ceiling: %s: header %.*s is too long\n", path, (int)headers[i].nlen,
                    headers[i].name);
            return -1;
        }
        memcpy(name, headers[i].name, headers[i].nlen);
        name[headers[i].nlen] = '\0';
        memcpy(value, headers[i].value, headers[i].vlen);
        value[headers[i].vlen] = '\0';
        if (MHD_add_response_header(out->response, name, value) != MHD_YES) {
            fprintf(stderr, "ceiling: %s: libmicrohttpd refused header %s\n", path, name);
            return -1;
        }
    }
    return 0;
}

static MHD_Result_t on_request(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    const reply *r = cls;
    /* The first call only announces the request: a response queued then
     * makes libmicrohttpd close the connection ("Connection: close"), which
     * would turn a keep-alive benchmark into a connect benchmark. A body,
     * if any, is swallowed. */
    static int seen;
    if (*con_cls == NULL) {
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(conn, r->status, r->response);
}

/* "HOST:PORT" with an IPv4 host. Returns 0 or -1. */
static int parse_listen(const char *s, struct sockaddr_in *sa)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || colon - s >= 64) return -1;
    char host[64];
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *endp;
    errno = 0;
    long port = strtol(colon + 1, &endp, 10);
    if (errno || *endp || endp == colon + 1 || port < 0 || port > 65535) return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    char *endp;
    errno = 0;
    unsigned long v = strtoul(s, &endp, 10);
    if (errno || *endp || endp == s || *s == '-' || v < min || v > max) return -1;
    *out = (unsigned)v;
    return 0;
}

/* Writes the port atomically, so a reader never sees half a number. */
static int write_port_file(const char *path, unsigned port)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        fprintf(stderr, "ceiling: --port-file path too long\n");
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "ceiling: cannot write --port-file %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *reply_path = NULL, *listen_at = "127.0.0.1:0", *port_file = NULL;
    unsigned threads = 2, max_connections = 16384, conn_memory = 16384;
    static const struct option opts[] = {
        {"reply", required_argument, NULL, 'r'},
        {"listen", required_argument, NULL, 'l'},
        {"port-file", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"max-connections", required_argument, NULL, 'm'},
        {"conn-memory", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            reply_path = optarg;
            break;
        case 'l':
            listen_at = optarg;
            break;
        case 'p':
            port_file = optarg;
            break;
        case 't':
            if (parse_uint(optarg, 1, 256, &threads) != 0) {
                fprintf(stderr, "ceiling: --threads %s: expected 1..256\n", optarg);
                usage(stderr);
                return 2;
            }
            break;
        case 'm':
            if (parse_uint(optarg, 1, 1000000, &max_connections) != 0) {
                fprintf(stderr, "ceiling: --max-connections %s: expected 1..1000000\n", optarg);
                usage(stderr);
                return 2;
            }
            break;
        case 'M':
            if (parse_uint(optarg, 1024, 1 << 24, &conn_memory) != 0) {
                fprintf(stderr, "ceiling: --conn-memory %s: expected 1024..16777216 bytes\n",
                        optarg);
                usage(stderr);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!reply_path || optind != argc) {
        fprintf(stderr, "ceiling: %s\n",
                reply_path ? "unexpected argument" : "--reply is required");
        usage(stderr);
        return 2;
    }
    struct sockaddr_in sa;
    if (parse_listen(listen_at, &sa) != 0) {
        fprintf(stderr, "ceiling: --listen %s: expected IPV4:PORT, e.g. 127.0.0.1:0\n", listen_at);
        usage(stderr);
        return 2;
    }

    size_t len;
    char *data = read_file(reply_path, &len);
    if (!data) return 1;
    reply r = {0};
    int rc = parse_reply(reply_path, data, len, &r);
    free(data);
    if (rc != 0) {
        if (r.response) MHD_destroy_response(r.response);
        return 1;
    }

    /* The signals stay blocked everywhere but in sigsuspend below, so the
     * daemon's threads (which inherit the mask) never take them and no
     * signal slips in between the check and the wait. */
    struct sigaction act = {.sa_handler = on_signal};
    sigemptyset(&act.sa_mask);
    sigaction(SIGINT, &act, NULL);
    sigaction(SIGTERM, &act, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);

    /* As lib/httpd.c: our own listening socket (backlog 4096, so a burst
     * of clients does not overflow the accept queue), the same flags, pool
     * size, connection limit, per-connection memory and idle timeout. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0) {
        fprintf(stderr, "ceiling: cannot listen on %s: %s\n", listen_at, strerror(errno));
        if (fd >= 0) close(fd);
        MHD_destroy_response(r.response);
        return 1;
    }
    socklen_t salen = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &salen);
    unsigned port = ntohs(sa.sin_port);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, &r, MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
                         max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)conn_memory,
                         MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ceiling: libmicrohttpd refused to start on %s\n", listen_at);
        close(fd);
        MHD_destroy_response(r.response);
        return 1;
    }
    fprintf(stderr,
            "ceiling: listening on port %u; every reply: %u, %zu header(s), %zu body bytes\n", port,
            r.status, r.nheaders, r.body_len);
    rc = 0;
    if (port_file && write_port_file(port_file, port) != 0) rc = 1;

    while (rc == 0 && !stop_requested) sigsuspend(&old);

    MHD_stop_daemon(d);
    MHD_destroy_response(r.response);
    return rc;
}
