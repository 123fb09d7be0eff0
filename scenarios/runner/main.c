/* main.c — scenario-runner's entry point: parses the command line and
 * dispatches to run, validate, list, compare or soak.
 *
 * One idea: every command loads and validates all its scenarios before it
 * touches anything, and its exit code says what happened: 0 passed, 1 a
 * scenario failed (compare: a regression), 2 bad usage or an invalid
 * scenario (nothing ran), 3 the environment could not be set up, 130
 * interrupted. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "csl/log.h"
#include "engine_priv.h"
#include "report.h"
#include "scenario.h"

enum { EXIT_PASS = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_ENV = 3, EXIT_INTERRUPTED = 130 };

/* Loads every scenario under paths; prints every error and returns -1
 * when any file is invalid (or two scenarios share a name, for a run). */
static int load_all(char **paths, size_t n, bool unique_names, sr_scenario ***out, size_t *nout)
{
    sr_errors errs;
    sr_errors_init(&errs);
    char **files = NULL;
    size_t nfiles = 0;
    *out = NULL;
    *nout = 0;
    sr_collect_paths(paths, n, &files, &nfiles, &errs);
    sr_scenario **list = calloc(nfiles ? nfiles : 1, sizeof *list);
    size_t k = 0;
    for (size_t i = 0; list && i < nfiles; i++) {
        sr_scenario *s = sr_scenario_load(files[i], &errs);
        if (s) list[k++] = s;
    }
    if (!errs.n && !nfiles) sr_errors_add(&errs, "no scenario files found under the given paths");
    for (size_t i = 0; unique_names && i < k; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(list[i]->name, list[j]->name))
                sr_errors_add(&errs, "%s: scenario name \"%s\" is also used by %s; names must be unique in a run",
                              list[i]->file, list[i]->name, list[j]->file);
    for (size_t i = 0; i < nfiles; i++) free(files[i]);
    free(files);
    if (errs.n) {
        for (size_t i = 0; i < errs.n; i++) fprintf(stderr, "%s\n", errs.items[i]);
        fprintf(stderr, "%zu error(s); nothing was run\n", errs.n);
        sr_errors_free(&errs);
        for (size_t i = 0; i < k; i++) sr_scenario_free(list[i]);
        free(list);
        return -1;
    }
    sr_errors_free(&errs);
    *out = list;
    *nout = k;
    return 0;
}

static void free_all(sr_scenario **list, size_t n)
{
    for (size_t i = 0; i < n; i++) sr_scenario_free(list[i]);
    free(list);
}

/* The directory this program lives in: where mockcloud and the operator
 * are by default. */
static void own_dir(char *out, size_t sz)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(out, sz, "bin");
        return;
    }
    exe[n] = 0;
    snprintf(out, sz, "%s", dirname(exe));
}

static int cmd_validate(sr_cli *cli)
{
    sr_scenario **list;
    size_t n;
    if (load_all(cli->paths, cli->n_paths, false, &list, &n) < 0) return EXIT_USAGE;
    printf("%zu scenario(s) valid\n", n);
    free_all(list, n);
    return EXIT_PASS;
}

static int cmd_list(sr_cli *cli)
{
    sr_scenario **list;
    size_t n;
    if (load_all(cli->paths, cli->n_paths, false, &list, &n) < 0) return EXIT_USAGE;
    printf("%-40s %-30s %5s  %s\n", "NAME", "TAGS", "STEPS", "FILE");
    for (size_t i = 0; i < n; i++) {
        char tags[256] = "";
        size_t len = 0;
        for (size_t k = 0; k < list[i]->n_tags && len < sizeof tags; k++)
            len += (size_t)snprintf(tags + len, sizeof tags - len, "%s%s", k ? "," : "", list[i]->tags[k]);
        printf("%-40s %-30s %5zu  %s\n", list[i]->name, tags[0] ? tags : "-", list[i]->n_steps,
               list[i]->file);
    }
    free_all(list, n);
    return EXIT_PASS;
}

static int cmd_compare(sr_cli *cli)
{
    char err[1024];
    const char *pa = cli->paths[0], *pb = cli->paths[1];
    sr_run *a = sr_report_load(pa, err, sizeof err);
    if (!a) {
        fprintf(stderr, "scenario-runner compare: A: %s\n", err);
        return EXIT_USAGE;
    }
    sr_run *b = sr_report_load(pb, err, sizeof err);
    if (!b) {
        fprintf(stderr, "scenario-runner compare: B: %s\n", err);
        sr_run_free(a);
        return EXIT_USAGE;
    }
    char dir[PATH_MAX], md[PATH_MAX + 16];
    struct stat st;
    if (cli->run.report_dir) {
        snprintf(dir, sizeof dir, "%s", cli->run.report_dir);
        mkdir(dir, 0755);
    } else if (stat(pb, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s", pb);
    } else {
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s", pb);
        snprintf(dir, sizeof dir, "%s", dirname(tmp));
    }
    snprintf(md, sizeof md, "%s/compare.md", dir);
    FILE *mf = fopen(md, "w");
    if (!mf) fprintf(stderr, "scenario-runner compare: cannot write %s; table on stdout only\n", md);
    int rc = sr_compare(a, b, cli->threshold_pct, stdout, mf);
    if (mf && fclose(mf) == 0) fprintf(stderr, "compare: %s\n", md);
    sr_run_free(a);
    sr_run_free(b);
    if (rc < 0) return EXIT_USAGE;
    if (rc > 0) {
        fprintf(stderr, "compare: %d regression(s) beyond %.1f%%\n", rc, cli->threshold_pct);
        return EXIT_FAILED;
    }
    return EXIT_PASS;
}

static int cmd_run(sr_cli *cli)
{
    sr_scenario **list;
    size_t n;
    if (load_all(cli->paths, cli->n_paths, true, &list, &n) < 0) return EXIT_USAGE;
    char bin[PATH_MAX];
    if (!cli->run.env.bin_dir) {
        own_dir(bin, sizeof bin);
        cli->run.env.bin_dir = bin;
    }
    cli->run.progress_tty = !cli->no_progress && isatty(2);
    sr_engine_install_signals();
    bool env_failed = false;
    char err[2048] = "";
    sr_run *r = cli->cmd == SR_CMD_SOAK
                    ? sr_engine_soak(&cli->run, list, n, cli->duration_ns, cli->interval_ns,
                                     &env_failed, err, sizeof err)
                    : sr_engine_run(&cli->run, list, n, &env_failed, err, sizeof err);
    int rc;
    if (!r) {
        fprintf(stderr, "scenario-runner: %s\n", err[0] ? err : "the run could not start");
        rc = sr_engine_interrupted ? EXIT_INTERRUPTED : env_failed ? EXIT_ENV : EXIT_FAILED;
    } else {
        size_t pass = 0, fail = 0, skip = 0;
        for (size_t i = 0; i < r->n_scenarios; i++) {
            sr_status st = r->scenarios[i]->status;
            if (st == SR_PASS) pass++;
            else if (st == SR_SKIP) skip++;
            else fail++;
        }
        char cpu[64] = "";
        if (r->runner_cpu_s >= 0 && r->duration_s > 0)
            snprintf(cpu, sizeof cpu, " (runner CPU %.1fs, %.1f%% of a core)", r->runner_cpu_s,
                     100.0 * r->runner_cpu_s / r->duration_s);
        fprintf(stderr, "%zu passed, %zu failed, %zu skipped in %.1fs%s; report: %s/%s/\n", pass,
                fail, skip, r->duration_s, cpu,
                cli->run.report_dir ? cli->run.report_dir : "reports", r->run_id);
        rc = sr_engine_interrupted          ? EXIT_INTERRUPTED
             : sr_run_status(r) == SR_PASS ? EXIT_PASS
                                           : EXIT_FAILED;
        sr_run_free(r);
    }
    free_all(list, n);
    return rc;
}

int main(int argc, char **argv)
{
    csl_log_level lvl = CSL_LOG_WARN;
    const char *ls = getenv("SR_LOG_LEVEL");
    if (ls) csl_log_level_parse(ls, &lvl);
    csl_log_setup("scenario-runner", lvl, CSL_LOG_TEXT, 2);
    sr_cli cli;
    char err[1024];
    if (sr_cli_parse(argc, argv, &cli, err, sizeof err) < 0) {
        fprintf(stderr, "scenario-runner: %s\n(`scenario-runner %s%s--help` shows the usage)\n", err,
                cli.cmd == SR_CMD_NONE ? "" : argv[1], cli.cmd == SR_CMD_NONE ? "" : " ");
        sr_cli_free(&cli);
        return EXIT_USAGE;
    }
    if (cli.help) {
        fputs(sr_cli_usage(cli.cmd), stdout);
        sr_cli_free(&cli);
        return EXIT_PASS;
    }
    int rc;
    switch (cli.cmd) {
    case SR_CMD_VALIDATE: rc = cmd_validate(&cli); break;
    case SR_CMD_LIST: rc = cmd_list(&cli); break;
    case SR_CMD_COMPARE: rc = cmd_compare(&cli); break;
    default: rc = cmd_run(&cli); break;
    }
    sr_cli_free(&cli);
    return rc;
}
