/* main.c — the mockcloud program: flags, logging, signals, exit codes.
 *
 * Design idea: SIGTERM and SIGINT are blocked in every thread and taken by
 * the main thread with sigwait, so no code runs in signal context and the
 * shutdown (drain, flush, free) is ordinary sequential code.
 *
 * Exit codes: 0 after a signal-driven shutdown (and for --help/--version),
 * 1 when start-up fails (config, tokens file, state file, listen), 2 for a
 * bad command line. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csl/log.h"
#include "server.h"

static const char usage_text[] =
    "Usage: mockcloud [FLAGS]\n"
    "A mock cloud REST API with an instance lifecycle and fault injection.\n"
    "\n"
    "  --listen HOST:PORT      address to serve on; port 0 picks a free port\n"
    "                          (default " MC_DEFAULT_LISTEN ")\n"
    "  --port-file F           after binding, write the port number to F (atomically)\n"
    "                          (default: none)\n"
    "  --token T               accept bearer token T; repeatable; \"T:ro\" makes it\n"
    "                          read-only (default: none — /v1 auth is off when no\n"
    "                          token is configured)\n"
    "  --tokens-file F         tokens, one per line: \"TOKEN [rw|ro]\"; # comments\n"
    "                          (default: none)\n"
    "  --admin-token T         require \"Authorization: Bearer T\" on /_mock/*\n"
    "                          (default: none — /_mock/* is open)\n"
    "  --seed N                seed of every random choice, an unsigned 64-bit integer\n"
    "                          (default: the config's seed, else random; logged at start)\n"
    "  --config F              start-up YAML: seed, cloud, faults, tokens (default: none)\n"
    "  --state-file F          keep instances, snapshots, operations and idempotency\n"
    "                          keys in F across restarts (default: none)\n"
    "  --journal-size N        request journal entries kept (default 10000)\n"
    "  --max-body BYTES        request body limit, larger gets 413 (default 1048576)\n"
    "  --threads N             HTTP polling threads (default 2)\n"
    "  --max-connections N     concurrent connections (default 16384)\n"
    "  --conn-memory BYTES     memory per open connection, 4096..1048576; the request\n"
    "                          line and headers must fit in it (default 16384)\n"
    "  --log-format FMT        text | json (default text)\n"
    "  --log-level LEVEL       debug | info | warn | error (default info)\n"
    "  --help                  show this help and exit\n"
    "  --version               show the version and exit\n"
    "\n"
    "Signals: SIGTERM or SIGINT stops accepting, ends suspended requests, writes the\n"
    "state file and exits 0. Reference: docs/mockcloud.md\n";

enum {
    OPT_LISTEN = 256,
    OPT_PORT_FILE,
    OPT_TOKEN,
    OPT_TOKENS_FILE,
    OPT_ADMIN_TOKEN,
    OPT_SEED,
    OPT_CONFIG,
    OPT_STATE_FILE,
    OPT_JOURNAL_SIZE,
    OPT_MAX_BODY,
    OPT_THREADS,
    OPT_MAX_CONNECTIONS,
    OPT_CONN_MEMORY,
    OPT_LOG_FORMAT,
    OPT_LOG_LEVEL,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"tokens-file", required_argument, NULL, OPT_TOKENS_FILE},
    {"admin-token", required_argument, NULL, OPT_ADMIN_TOKEN},
    {"seed", required_argument, NULL, OPT_SEED},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"state-file", required_argument, NULL, OPT_STATE_FILE},
    {"journal-size", required_argument, NULL, OPT_JOURNAL_SIZE},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"conn-memory", required_argument, NULL, OPT_CONN_MEMORY},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("mockcloud: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    fputs(usage_text, stderr);
    return 2;
}

/* Whole-string unsigned integer in [min, max]. */
static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

/* HOST:PORT with a non-empty host and a port 0..65535 ([v6]:PORT too). */
static bool valid_listen(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return false;
    if (s[0] == '[' && colon[-1] != ']') return false;
    uint64_t port;
    return parse_u64(colon + 1, 0, 65535, &port);
}

int main(int argc, char **argv)
{
    mc_server_config cfg;
    mc_server_config_init(&cfg);
    csl_log_level level = CSL_LOG_INFO;
    csl_log_format format = CSL_LOG_TEXT;
    const char **tokens = calloc((size_t)argc, sizeof *tokens);
    if (!tokens) {
        fputs("mockcloud: out of memory\n", stderr);
        return 1;
    }
    int rc = 2;
    uint64_t v;

    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN:
            if (!valid_listen(optarg)) {
                rc = usage_error("--listen: \"%s\" is not HOST:PORT (e.g. 127.0.0.1:8090)", optarg);
                goto out;
            }
            cfg.listen = optarg;
            break;
        case OPT_PORT_FILE:
            cfg.port_file = optarg;
            break;
        case OPT_TOKEN:
            tokens[cfg.ntokens++] = optarg;
            break;
        case OPT_TOKENS_FILE:
            cfg.tokens_file = optarg;
            break;
        case OPT_ADMIN_TOKEN:
            if (!*optarg || strchr(optarg, ' ')) {
                rc = usage_error("--admin-token: must be non-empty and without spaces");
                goto out;
            }
            cfg.admin_token = optarg;
            break;
        case OPT_SEED:
            if (!parse_u64(optarg, 0, UINT64_MAX, &cfg.seed)) {
                rc = usage_error("--seed: \"%s\" is not an unsigned 64-bit integer", optarg);
                goto out;
            }
            cfg.has_seed = true;
            break;
        case OPT_CONFIG:
            cfg.config_file = optarg;
            break;
        case OPT_STATE_FILE:
            cfg.state_file = optarg;
            break;
        case OPT_JOURNAL_SIZE:
            if (!parse_u64(optarg, 1, 10000000, &v)) {
                rc = usage_error("--journal-size: \"%s\" is not a number 1..10000000", optarg);
                goto out;
            }
            cfg.journal_size = (size_t)v;
            break;
        case OPT_MAX_BODY:
            if (!parse_u64(optarg, 1, (uint64_t)1 << 30, &v)) {
                rc = usage_error("--max-body: \"%s\" is not a byte count 1..1073741824", optarg);
                goto out;
            }
            cfg.max_body = (size_t)v;
            break;
        case OPT_THREADS:
            if (!parse_u64(optarg, 1, 256, &v)) {
                rc = usage_error("--threads: \"%s\" is not a number 1..256", optarg);
                goto out;
            }
            cfg.threads = (unsigned)v;
            break;
        case OPT_MAX_CONNECTIONS:
            if (!parse_u64(optarg, 1, 1000000, &v)) {
                rc = usage_error("--max-connections: \"%s\" is not a number 1..1000000", optarg);
                goto out;
            }
            cfg.max_connections = (unsigned)v;
            break;
        case OPT_CONN_MEMORY:
            if (!parse_u64(optarg, 4096, 1048576, &v)) {
                rc = usage_error("--conn-memory: \"%s\" is not a number 4096..1048576", optarg);
                goto out;
            }
            cfg.conn_memory = (size_t)v;
            break;
        case OPT_LOG_FORMAT:
            if (!csl_log_format_parse(optarg, &format)) {
                rc = usage_error("--log-format: \"%s\" is not text or json", optarg);
                goto out;
            }
            break;
        case OPT_LOG_LEVEL:
            if (!csl_log_level_parse(optarg, &level)) {
                rc = usage_error("--log-level: \"%s\" is not debug, info, warn or error", optarg);
                goto out;
            }
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            rc = 0;
            goto out;
        case OPT_VERSION:
            printf("mockcloud %s\n", MC_VERSION);
            rc = 0;
            goto out;
        case ':':
            rc = usage_error("%s: needs a value", argv[optind - 1]);
            goto out;
        default:
            rc = usage_error("unknown flag \"%s\"", argv[optind - 1]);
            goto out;
        }
    }
    if (optind < argc) {
        rc = usage_error("unexpected argument \"%s\"", argv[optind]);
        goto out;
    }
    cfg.tokens = tokens;

    csl_log_setup("mockcloud", level, format, 2);

    /* Before any thread exists, so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[1024];
    mc_server *s = mc_server_new(&cfg, err, sizeof err);
    if (!s) {
        csl_log(CSL_LOG_ERROR, "cannot start", "error", err, NULL);
        rc = 1;
        goto out;
    }
    if (mc_server_start(s, err, sizeof err) < 0) {
        csl_log(CSL_LOG_ERROR, "cannot start", "error", err, NULL);
        mc_server_free(s);
        rc = 1;
        goto out;
    }

    char addr[300], seed[24], port[8];
    const char *colon = strrchr(cfg.listen, ':');
    snprintf(port, sizeof port, "%d", mc_server_port(s));
    snprintf(addr, sizeof addr, "%.*s:%s", (int)(colon - cfg.listen), cfg.listen, port);
    snprintf(seed, sizeof seed, "%" PRIu64, mc_server_seed(s));
    csl_log(CSL_LOG_INFO, "listening", "addr", addr, "seed", seed, "stateFile",
            cfg.state_file ? cfg.state_file : "", NULL);
    if (!mc_server_auth_enabled(s))
        csl_log(CSL_LOG_WARN, "no --token or --tokens-file: /v1 accepts every request", NULL);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    csl_log(CSL_LOG_INFO, "stopping", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    mc_server_free(s);
    csl_log(CSL_LOG_INFO, "stopped", NULL);
    rc = 0;
out:
    free(tokens);
    return rc;
}
