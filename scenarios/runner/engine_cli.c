/* engine_cli.c — the command line of scenario-runner: commands, flags,
 * their values and the usage texts.
 *
 * One idea: parsing is pure (argv in, an sr_cli out, or a message naming
 * the flag), so every accepted and refused form is unit-tested; main.c
 * only acts on the result. Flags may come before or after PATHs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "csl/units.h"
#include "engine_priv.h"

static const char USAGE_MAIN[] =
    "usage: scenario-runner COMMAND [options] ...\n"
    "\n"
    "commands:\n"
    "  run       run scenarios against a target and write reports\n"
    "  validate  check scenario files without running them\n"
    "  list      list scenarios: name, tags, steps, file\n"
    "  compare   compare two runs' SLOs (the gray-release gate)\n"
    "  soak      repeat scenarios for a duration\n"
    "\n"
    "`scenario-runner COMMAND --help` shows a command's options.\n"
    "exit: 0 passed; 1 a scenario failed (compare: a regression); 2 bad usage or\n"
    "invalid scenario; 3 the environment could not be set up; 130 interrupted.\n";

static const char USAGE_TARGET[] =
    "target:\n"
    "  --local                      the runner's own control plane (default)\n"
    "  --kubeconfig F [--context C] a cluster where the operator is deployed; then:\n"
    "    --mockcloud-url URL          the mockcloud every scenario uses (required)\n"
    "    --mockcloud-admin-token T    its admin token\n"
    "    --mockcloud-token T          the cloud token the operator's Secret holds\n"
    "    --operator-namespace NS      where the operator's pods are\n"
    "    --operator-selector L        their label selector\n"
    "    --operator-metrics-url URL   the operator's /metrics (CPU/RSS SLOs)\n"
    "  --operator-cmd \"CMD\"          local: run CMD instead of bin/cloudserver-operator\n"
    "  --bin-dir D                  where cloudserver-operator and mockcloud are\n"
    "                               (default: the runner's own directory)\n"
    "  --break MODE                 local: CSL_OPERATOR_BREAK for the operator (test only)\n";

static const char USAGE_RUN_OPTS[] =
    "options:\n"
    "  --parallel N      scenarios at once (default 1)\n"
    "  --seed N          mockcloud seed for scenarios that set none (default 1)\n"
    "  --report-dir D    where reports go (default reports/); the run's in D/<run-id>/\n"
    "  --run-id ID       default YYYYMMDD-HHMMSS-<4 hex>\n"
    "  --time-scale F    run the operator F times faster (overrides the scenarios')\n"
    "  --tag T           only scenarios tagged T\n"
    "  --keep            leave the plane and namespaces up (debugging)\n"
    "  --no-progress     plain progress lines even on a terminal\n";

static char usage_buf[4096];

const char *sr_cli_usage(sr_cmd cmd)
{
    switch (cmd) {
    case SR_CMD_RUN:
        snprintf(usage_buf, sizeof usage_buf,
                 "usage: scenario-runner run [target] [options] PATH...\n"
                 "PATH: a scenario file, or a directory (every *.yaml/*.yml under it).\n\n%s\n%s",
                 USAGE_RUN_OPTS, USAGE_TARGET);
        return usage_buf;
    case SR_CMD_SOAK:
        snprintf(usage_buf, sizeof usage_buf,
                 "usage: scenario-runner soak --duration D [--interval D] [target] [options] PATH...\n"
                 "Repeats the scenarios until D has passed (one report, rewritten as it goes;\n"
                 "iteration k's results are named name#k).\n"
                 "  --duration D      how long (Go duration: 2h, 90m)\n"
                 "  --interval D      pause between iterations (default 0)\n\n%s\n%s",
                 USAGE_RUN_OPTS, USAGE_TARGET);
        return usage_buf;
    case SR_CMD_VALIDATE:
        return "usage: scenario-runner validate PATH...\n"
               "Checks every scenario file (all errors as file:line:col: message); exit 2 if any.\n";
    case SR_CMD_LIST:
        return "usage: scenario-runner list PATH...\n"
               "Prints name, tags, number of steps and file of each scenario.\n";
    case SR_CMD_COMPARE:
        return "usage: scenario-runner compare [--threshold PCT] [--report-dir D] A B\n"
               "A (baseline) and B (candidate): run directories or report.json files.\n"
               "  --threshold PCT   a regression is B worse than A by more than PCT percent (default 10)\n"
               "  --report-dir D    where compare.md goes (default: B's directory)\n"
               "exit: 0 no regression; 1 regressions; 2 a report could not be read.\n";
    default:
        return USAGE_MAIN;
    }
}

static int want_value(int argc, char **argv, int *i, const char *flag, char **out, char *err,
                      size_t errsz)
{
    /* --flag=value or --flag value */
    const char *eq = strchr(argv[*i], '=');
    if (eq) {
        *out = (char *)eq + 1;
        return 0;
    }
    if (*i + 1 >= argc) {
        snprintf(err, errsz, "%s needs a value", flag);
        return -1;
    }
    *out = argv[++*i];
    return 0;
}

static bool flag_is(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return !strncmp(arg, name, n) && (arg[n] == 0 || arg[n] == '=');
}

int sr_cli_parse(int argc, char **argv, sr_cli *cli, char *err, size_t errsz)
{
    memset(cli, 0, sizeof *cli);
    cli->threshold_pct = 10;
    cli->run.parallel = 1;
    cli->run.env.local = true;
    if (argc < 2) {
        snprintf(err, errsz, "no command given; expected run, validate, list, compare or soak");
        return -1;
    }
    const char *c = argv[1];
    if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
        cli->help = true;
        return 0;
    }
    if (!strcmp(c, "run")) cli->cmd = SR_CMD_RUN;
    else if (!strcmp(c, "validate")) cli->cmd = SR_CMD_VALIDATE;
    else if (!strcmp(c, "list")) cli->cmd = SR_CMD_LIST;
    else if (!strcmp(c, "compare")) cli->cmd = SR_CMD_COMPARE;
    else if (!strcmp(c, "soak")) cli->cmd = SR_CMD_SOAK;
    else {
        snprintf(err, errsz, "unknown command \"%s\"; expected run, validate, list, compare or soak", c);
        return -1;
    }
    cli->paths = calloc((size_t)argc, sizeof *cli->paths);
    if (!cli->paths) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    bool runlike = cli->cmd == SR_CMD_RUN || cli->cmd == SR_CMD_SOAK;
    bool has_kubeconfig = false, has_local = false, only_paths = false;
    sr_run_options *o = &cli->run;
    for (int i = 2; i < argc; i++) {
        char *a = argv[i], *v = NULL;
        if (only_paths || a[0] != '-' || !strcmp(a, "-")) {
            cli->paths[cli->n_paths++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_paths = true;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cli->help = true;
            return 0;
        }
#define VALUE(name)                                                                                \
    (flag_is(a, name) && (want_value(argc, argv, &i, name, &v, err, errsz) == 0 ? true : (fail = true, false)))
        bool fail = false;
        if (cli->cmd == SR_CMD_COMPARE) {
            if (VALUE("--threshold")) {
                char *end;
                errno = 0;
                cli->threshold_pct = strtod(v, &end);
                if (errno || *end || end == v || cli->threshold_pct < 0) {
                    snprintf(err, errsz, "--threshold: expected a percentage >= 0, got \"%s\"", v);
                    return -1;
                }
                continue;
            }
            if (VALUE("--report-dir")) {
                o->report_dir = v;
                continue;
            }
        } else if (runlike) {
            if (!strcmp(a, "--local")) {
                has_local = true;
                o->env.local = true;
                continue;
            }
            if (!strcmp(a, "--keep")) {
                o->env.keep = true;
                continue;
            }
            if (!strcmp(a, "--no-progress")) {
                cli->no_progress = true;
                continue;
            }
            if (VALUE("--parallel")) {
                char *end;
                long n = strtol(v, &end, 10);
                if (*end || end == v || n < 1 || n > 64) {
                    snprintf(err, errsz, "--parallel: expected a number 1..64, got \"%s\"", v);
                    return -1;
                }
                o->parallel = (int)n;
                continue;
            }
            if (VALUE("--seed")) {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(v, &end, 10);
                if (errno || *end || end == v || v[0] == '-') {
                    snprintf(err, errsz, "--seed: expected an unsigned integer, got \"%s\"", v);
                    return -1;
                }
                o->has_seed = true;
                o->seed = n;
                continue;
            }
            if (VALUE("--time-scale")) {
                char *end;
                double f = strtod(v, &end);
                if (*end || end == v || !(f >= 1) || f > 1000) {
                    snprintf(err, errsz, "--time-scale: expected a number 1..1000, got \"%s\"", v);
                    return -1;
                }
                o->time_scale = f;
                continue;
            }
            if (VALUE("--report-dir")) { o->report_dir = v; continue; }
            if (VALUE("--run-id")) {
                if (!*v || strchr(v, '/') || !strcmp(v, ".") || !strcmp(v, "..") || !strcmp(v, "latest")) {
                    snprintf(err, errsz, "--run-id: \"%s\" cannot name a directory of its own", v);
                    return -1;
                }
                o->run_id = v;
                continue;
            }
            if (VALUE("--tag")) { o->tag = v; continue; }
            if (VALUE("--break")) { o->env.break_mode = v; continue; }
            if (VALUE("--kubeconfig")) { o->env.kubeconfig = v; has_kubeconfig = true; continue; }
            if (VALUE("--context")) { o->env.context = v; continue; }
            if (VALUE("--mockcloud-url")) { o->env.mockcloud_url = v; continue; }
            if (VALUE("--mockcloud-admin-token")) { o->env.mockcloud_admin_token = v; continue; }
            if (VALUE("--mockcloud-token")) { o->env.mockcloud_token = v; continue; }
            if (VALUE("--operator-namespace")) { o->env.operator_namespace = v; continue; }
            if (VALUE("--operator-selector")) { o->env.operator_selector = v; continue; }
            if (VALUE("--operator-metrics-url")) { o->env.operator_metrics_url = v; continue; }
            if (VALUE("--operator-cmd")) { o->env.operator_cmd = v; continue; }
            if (VALUE("--bin-dir")) { o->env.bin_dir = v; continue; }
            if (cli->cmd == SR_CMD_SOAK && (VALUE("--duration") || VALUE("--interval"))) {
                int64_t ns;
                char ue[CSL_UNITS_ERR_LEN];
                bool dur = flag_is(a, "--duration");
                if (csl_duration_parse(v, &ns, ue) < 0) {
                    snprintf(err, errsz, "%s: %s", dur ? "--duration" : "--interval", ue);
                    return -1;
                }
                if (dur) cli->duration_ns = ns;
                else cli->interval_ns = ns;
                continue;
            }
        }
#undef VALUE
        if (fail) return -1;
        snprintf(err, errsz, "unknown option %s for %s; see scenario-runner %s --help", a, c, c);
        return -1;
    }
    if (has_local && has_kubeconfig) {
        snprintf(err, errsz, "--local and --kubeconfig cannot be combined; pick one target");
        return -1;
    }
    if (has_kubeconfig) {
        o->env.local = false;
        if (!o->env.mockcloud_url) {
            snprintf(err, errsz, "--kubeconfig needs --mockcloud-url (the mockcloud the scenarios "
                                 "drive, e.g. through kubectl port-forward)");
            return -1;
        }
        if (o->env.break_mode || o->env.operator_cmd) {
            snprintf(err, errsz, "%s works only with --local (the runner starts the operator)",
                     o->env.break_mode ? "--break" : "--operator-cmd");
            return -1;
        }
    } else if (o->env.mockcloud_url || o->env.operator_selector || o->env.operator_namespace ||
               o->env.context || o->env.operator_metrics_url) {
        snprintf(err, errsz, "--mockcloud-url, --context and --operator-* go with --kubeconfig");
        return -1;
    }
    if (cli->cmd == SR_CMD_SOAK && cli->duration_ns <= 0) {
        snprintf(err, errsz, "soak needs --duration D (e.g. --duration 2h)");
        return -1;
    }
    if (cli->cmd == SR_CMD_COMPARE) {
        if (cli->n_paths != 2) {
            snprintf(err, errsz, "compare needs exactly two runs, A (baseline) and B (candidate); got %zu",
                     cli->n_paths);
            return -1;
        }
    } else if (!cli->n_paths) {
        snprintf(err, errsz, "%s needs at least one PATH (a scenario file or directory)", c);
        return -1;
    }
    return 0;
}

void sr_cli_free(sr_cli *cli)
{
    free(cli->paths);
    cli->paths = NULL;
    cli->n_paths = 0;
}
