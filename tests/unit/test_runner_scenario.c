/* test_runner_scenario.c — the scenario parser against fixture files.
 *
 * Table-driven: every file in tests/unit/data/scenarios/invalid/ must be
 * refused with an error at an exact line:col that says what is wrong;
 * every file in valid/ (and the shipped library, scenarios/suites/) must
 * load, with the structure checked field by field for the rich ones, and
 * must use only keys that scenarios/scenario.schema.json allows (a small
 * structural JSON Schema walker below, so the schema cannot drift from the
 * parser unnoticed). Also: path collection over a temporary tree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../testutil.h"
#include "../../scenarios/runner/scenario.h"
#include "../../scenarios/runner/template.h"
#include "csl/buf.h"
#include "csl/yaml.h"

#define DATA "tests/unit/data/scenarios"
#define SCHEMA "scenarios/scenario.schema.json"

/* ---------------------------------------------------------------- helpers */

static void dump(const sr_errors *e)
{
    for (size_t i = 0; i < e->n; i++) fprintf(stderr, "\n    %s", e->items[i]);
}

/* The error that starts with prefix and contains sub, or NULL. */
static const char *find_err(const sr_errors *e, const char *prefix, const char *sub)
{
    for (size_t i = 0; i < e->n; i++)
        if (!strncmp(e->items[i], prefix, strlen(prefix)) && strstr(e->items[i], sub))
            return e->items[i];
    return NULL;
}

static sr_scenario *load_ok(const char *path)
{
    sr_errors e;
    sr_errors_init(&e);
    sr_scenario *s = sr_scenario_load(path, &e);
    CU_ASSERT_PTR_NOT_NULL(s);
    CU_ASSERT_EQUAL(e.n, 0);
    if (!s || e.n) {
        fprintf(stderr, "\n  %s should load:", path);
        dump(&e);
    }
    sr_errors_free(&e);
    return s;
}

/* ---------------------------------------------------------------- invalid files */

typedef struct bad_case {
    const char *file;    /* under invalid/ */
    int line, col;       /* 0: an error without a position */
    const char *message; /* a substring of it */
    const char *errfile; /* the file the error names, when not the scenario */
} bad_case;

static const bad_case bad_cases[] = {
    {"syntax.yaml", 3, 1, "did not find expected ',' or ']'", NULL},
    {"unknown-op.yaml", 4, 5,
     "steps[0]: unknown operation \"aply\"; expected one of apply, patch, delete, wait, assert, "
     "error, fault, "
     "crash, operator, apiserver, sleep, exec (did you mean \"apply\"?)",
     NULL},
    {"unknown-key-top.yaml", 2, 1,
     "unknown key \"timout\"; expected name, description, tags, timeout", NULL},
    {"unknown-key-top.yaml", 2, 1, "(did you mean \"timeout\"?)", NULL},
    {"unknown-key-nested.yaml", 6, 48, "steps[0].wait.condition: unknown key \"reasn\"", NULL},
    {"unknown-key-nested.yaml", 6, 48, "did you mean \"reason\"", NULL},
    {"wrong-type.yaml", 5, 14, "steps[0].apply.count: expected a whole number from 1", NULL},
    {"missing-name.yaml", 3, 5, "steps[0]: missing required key \"name\"", NULL},
    {"missing-steps.yaml", 1, 1, "missing required key \"steps\"", NULL},
    {"bad-duration.yaml", 2, 10, "timeout: unknown unit \"x\" in \"5x\"", NULL},
    {"duration-number.yaml", 4, 23, "steps[0].sleep.duration: expected a duration string", NULL},
    {"bad-quantity.yaml", 6, 27, "slos.operatorMemory.limit: unknown suffix \"MB\"", NULL},
    {"unknown-template.yaml", 8, 41, "unknown template variable {{nmspace}}", NULL},
    {"index-without-count.yaml", 8, 26, "{{index}} is only defined inside an operation with count",
     NULL},
    {"bad-expression.yaml", 8, 14, "steps[0].assert.count: invalid expression \"((@ >= 2)\"", NULL},
    {"selection-exclusive.yaml", 4, 27, "\"name\" and \"selector\" cannot be combined", NULL},
    {"wait-two-forms.yaml", 7, 7, "\"condition\" and \"deleted\" cannot be combined", NULL},
    {"wait-no-form.yaml", 4, 11, "wait needs one of condition, field, match or deleted", NULL},
    {"operator-bad-action.yaml", 4, 24,
     "expected kill, stop, start or restart, got the string \"kil\" (did you mean \"kill\"?)",
     NULL},
    {"operator-bad-replica.yaml", 4, 39, "replica 1 does not exist: setup.operator.replicas is 1",
     NULL},
    {"apply-two-sources.yaml", 6, 7, "\"object\" and \"file\" cannot be combined", NULL},
    {"apply-missing-file.yaml", 4, 19, "steps[0].apply.file: cannot load", NULL},
    {"apply-file-bad.yaml", 6, 1, "document 2: missing required key \"kind\"",
     DATA "/invalid/../objects/bad-objects.yaml"},
    {"apply-file-bad.yaml", 7, 18, "unknown template variable {{nope}}",
     DATA "/invalid/../objects/bad-objects.yaml"},
    {"concurrency-zero.yaml", 6, 20,
     "steps[0].apply.concurrency: expected a whole number from 1 to 1024, got the number 0", NULL},
    {"duplicate-step.yaml", 5, 11, "duplicate step name \"nap\"; steps[0] at line 3", NULL},
    {"bad-name.yaml", 1, 7, "\"Crash_Failover\" is not a valid scenario name", NULL},
    {"setup-bad.yaml", 5, 15, "setup.operator.replicas: expected a whole number from 1 to 3", NULL},
    {"invariant-not-bool.yaml", 6, 14, "invariants.noOrphans: expected true or false", NULL},
    {"slos-shape.yaml", 6, 18, "slos.createToReady: expected a mapping", NULL},
    {"condition-status-bool.yaml", 4, 58, "quote it: \"True\"", NULL},
    {"fault-clear-unknown.yaml", 8, 20, "no fault is added with as: \"slwo\"", NULL},
    {"fault-clear-unknown.yaml", 8, 20, "did you mean \"slow\"", NULL},
    {"two-ops.yaml", 5, 5, "more than one operation (\"wait\" and \"assert\")", NULL},
    {"empty.yaml", 0, 0, "the file is empty", NULL},
    {"two-documents.yaml", 6, 1, "a scenario file holds exactly one scenario", NULL},
    {"vars-unknown.yaml", 11, 23, "unknown variable {{vars.imge}}; setup.vars defines image", NULL},
    {"unclosed-template.yaml", 6, 66, "unclosed \"{{\"", NULL},
    {"setup-template.yaml", 4, 12, "templates are not expanded in setup", NULL},
    {"crash-bad.yaml", 4, 45, "\"count\" and \"fraction\" cannot be combined", NULL},
    {"capacity-bad.yaml", 4, 31,
     "steps[0].fault.capacity.hk-1a: expected a whole number from 0 to 1000000, got the number -1",
     NULL},
    {"capacity-bad.yaml", 4, 42, "steps[0].fault.capacity.hk-1b: expected a whole number", NULL},
    {"capacity-bad.yaml", 6, 23, "steps[1].fault.capacity: expected at least one zone", NULL},
    {"capacity-bad.yaml", 8, 35, "\"as\" names an added rule; it goes with add, not capacity",
     NULL},
    {"exec-both.yaml", 4, 33, "\"command\" and \"shell\" cannot be combined", NULL},
    {"try-and-op.yaml", 5, 5, "either one operation (\"sleep\") or try", NULL},
    {"patch-json-not-list.yaml", 4, 41, "expected a non-empty list of JSON patch operations", NULL},
    {"try-unknown-op.yaml", 5, 9, "steps[0].try[0]: unknown operation \"wiat\"", NULL},
    {"many-errors.yaml", 2, 10, "timeout: expected a duration string", NULL},
    {"many-errors.yaml", 5, 23, "steps[0].sleep.duration: invalid duration \"forever\"", NULL},
    {"many-errors.yaml", 7, 42, "expected a replica number (0, 1, 2) or \"leader\"", NULL},
    {"many-errors.yaml", 9, 73, "did you mean \"scale\"", NULL},
    {"many-errors.yaml", 11, 23, "slos.reconcileErrorRate: expected a number >= 0 and <= 1", NULL},
};

static void test_invalid_files(void)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *bc = &bad_cases[i];
        char path[512], prefix[600];
        snprintf(path, sizeof path, DATA "/invalid/%s", bc->file);
        if (bc->line)
            snprintf(prefix, sizeof prefix, "%s:%d:%d: ", bc->errfile ? bc->errfile : path,
                     bc->line, bc->col);
        else
            snprintf(prefix, sizeof prefix, "%s: ", path);
        sr_errors e;
        sr_errors_init(&e);
        sr_scenario *s = sr_scenario_load(path, &e);
        CU_ASSERT_PTR_NULL(s);
        CU_ASSERT(e.n >= 1);
        const char *hit = find_err(&e, prefix, bc->message);
        CU_ASSERT_PTR_NOT_NULL(hit);
        if (!hit) {
            fprintf(stderr, "\n  %s: want \"%s…%s\"; got:", bc->file, prefix, bc->message);
            dump(&e);
        }
        sr_scenario_free(s);
        sr_errors_free(&e);
    }
}

/* Every error of a file is reported, not just the first; and every
 * invalid fixture is covered by the table above. */
static void test_all_errors_collected(void)
{
    sr_errors e;
    sr_errors_init(&e);
    CU_ASSERT_PTR_NULL(sr_scenario_load(DATA "/invalid/many-errors.yaml", &e));
    CU_ASSERT_EQUAL(e.n, 5);
    if (e.n != 5) dump(&e);
    sr_errors_free(&e);

    char *dir = DATA "/invalid";
    char **files = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(sr_collect_paths(&dir, 1, &files, &n, &e), 0);
    CU_ASSERT(n >= 40);
    for (size_t i = 0; i < n; i++) {
        const char *base = strrchr(files[i], '/') + 1;
        bool listed = false;
        for (size_t j = 0; j < sizeof bad_cases / sizeof bad_cases[0] && !listed; j++)
            listed = !strcmp(bad_cases[j].file, base);
        CU_ASSERT(listed);
        if (!listed) fprintf(stderr, "\n  %s has no entry in bad_cases", files[i]);
        free(files[i]);
    }
    free(files);
}

static void test_errors_api(void)
{
    sr_errors e;
    sr_errors_init(&e);
    CU_ASSERT_EQUAL(e.n, 0);
    sr_errors_add(&e, "%s:%d:%d: %s", "f.yaml", 3, 4, "bad");
    sr_errors_add(&e, "second");
    CU_ASSERT_EQUAL(e.n, 2);
    CU_ASSERT_STRING_EQUAL(e.items[0], "f.yaml:3:4: bad");
    sr_errors_free(&e);
    CU_ASSERT_EQUAL(e.n, 0);
    CU_ASSERT_PTR_NULL(e.items);
    sr_scenario_free(NULL);
}

/* ---------------------------------------------------------------- valid files */

static void test_minimal_defaults(void)
{
    sr_scenario *s = load_ok(DATA "/valid/minimal.yaml");
    if (!s) return;
    CU_ASSERT_STRING_EQUAL(s->name, "minimal");
    CU_ASSERT_STRING_EQUAL(s->description, "");
    CU_ASSERT_STRING_EQUAL(s->dir, DATA "/valid");
    CU_ASSERT_EQUAL(s->n_tags, 0);
    CU_ASSERT_EQUAL(s->timeout_ns, 600LL * 1000000000LL);
    CU_ASSERT_FALSE(s->setup.has_seed);
    CU_ASSERT_EQUAL(s->setup.time_scale, 0);
    CU_ASSERT_EQUAL(s->setup.operator_replicas, 1);
    CU_ASSERT_PTR_NULL(s->setup.mock_timings);
    CU_ASSERT_PTR_NOT_NULL(s->setup.vars);
    CU_ASSERT(cJSON_IsObject(s->setup.vars));
    CU_ASSERT(s->invariants.one_instance_per_object && s->invariants.no_duplicate_creates &&
              s->invariants.no_orphans && s->invariants.status_matches_cloud &&
              s->invariants.finalizers_released && s->invariants.observed_generation);
    CU_ASSERT(s->slos.ctr_p99_s < 0 && s->slos.reconcile_error_rate < 0 &&
              s->slos.cpu_limit_cores < 0 && s->slos.kube_writes_per_object < 0);
    CU_ASSERT_FALSE(s->exclusive);
    CU_ASSERT_EQUAL_FATAL(s->n_steps, 1);
    const sr_step *st = &s->steps[0];
    CU_ASSERT_STRING_EQUAL(st->name, "nap");
    CU_ASSERT_EQUAL(st->timeout_ns, 30LL * 1000000000LL);
    CU_ASSERT_EQUAL(st->pos.line, 4);
    CU_ASSERT_EQUAL(st->pos.col, 5);
    CU_ASSERT_EQUAL_FATAL(st->n_try, 1);
    CU_ASSERT_EQUAL(st->n_catch + st->n_finally + st->n_cleanup, 0);
    CU_ASSERT_EQUAL(st->try_ops[0].kind, SR_OP_SLEEP);
    CU_ASSERT_EQUAL(st->try_ops[0].pos.line, 5);
    CU_ASSERT_EQUAL(st->try_ops[0].pos.col, 5);
    CU_ASSERT_EQUAL(st->try_ops[0].timeout_ns, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(st->try_ops[0].spec, "duration")->valuestring, "1s");
    sr_scenario_free(s);
}

static void test_full_structure(void)
{
    sr_scenario *s = load_ok(DATA "/valid/full.yaml");
    if (!s) return;
    CU_ASSERT_STRING_EQUAL(s->name, "full-0");
    CU_ASSERT_STRING_EQUAL(s->description, "Every key of the scenario format.");
    CU_ASSERT_EQUAL_FATAL(s->n_tags, 2);
    CU_ASSERT_STRING_EQUAL(s->tags[1], "full");
    CU_ASSERT_EQUAL(s->timeout_ns, 300LL * 1000000000LL);
    CU_ASSERT(s->setup.has_seed);
    CU_ASSERT_EQUAL(s->setup.seed, 7);
    CU_ASSERT_EQUAL(s->setup.time_scale, 10);
    CU_ASSERT_EQUAL(s->setup.operator_replicas, 2);
    CU_ASSERT_EQUAL_FATAL(s->setup.n_mock_args, 2);
    CU_ASSERT_STRING_EQUAL(s->setup.mock_args[1], "1000");
    CU_ASSERT_EQUAL_FATAL(s->setup.n_operator_args, 1);
    CU_ASSERT_STRING_EQUAL(s->setup.operator_args[0], "--sync-period=1m");
    CU_ASSERT(cJSON_IsObject(cJSON_GetObjectItem(s->setup.mock_timings, "create")));
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(s->setup.mock_capacity, "zones"));
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(s->setup.vars, "zone")->valuestring, "hk-1a");
    CU_ASSERT(s->exclusive);

    CU_ASSERT_FALSE(s->invariants.no_orphans);
    CU_ASSERT_FALSE(s->invariants.status_matches_cloud);
    CU_ASSERT_FALSE(s->invariants.observed_generation);
    CU_ASSERT(s->invariants.one_instance_per_object && s->invariants.no_duplicate_creates &&
              s->invariants.finalizers_released);

    CU_ASSERT_DOUBLE_EQUAL(s->slos.ctr_avg_s, 5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s->slos.ctr_p50_s, 3, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s->slos.ctr_p95_s, 10, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s->slos.ctr_p99_s, 60, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s->slos.reconcile_error_rate, 0.05, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s->slos.recovery_s, 60, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s->slos.cpu_limit_cores, 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s->slos.cpu_max_percent, 60, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s->slos.mem_limit_bytes, 128.0 * 1024 * 1024, 0.5);
    CU_ASSERT_DOUBLE_EQUAL(s->slos.mem_max_percent, 50, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s->slos.cloud_calls_per_object, 12, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s->slos.kube_writes_per_object, 4, 1e-9);

    CU_ASSERT_EQUAL_FATAL(s->n_steps, 16);
    static const sr_op_kind kinds[] = {SR_OP_APPLY,  SR_OP_APPLY,  SR_OP_WAIT,   SR_OP_WAIT,
                                       SR_OP_WAIT,   SR_OP_PATCH,  SR_OP_PATCH,  SR_OP_PATCH,
                                       SR_OP_ASSERT, SR_OP_ASSERT, SR_OP_ASSERT, SR_OP_ERROR,
                                       SR_OP_FAULT,  SR_OP_EXEC,   SR_OP_DELETE, SR_OP_WAIT};
    for (size_t i = 0; i < 16; i++) {
        CU_ASSERT_EQUAL_FATAL(s->steps[i].n_try >= 1, 1);
        CU_ASSERT_EQUAL(s->steps[i].try_ops[0].kind, kinds[i]);
    }

    /* apply with objects: the YAML's own list, positions known. */
    const sr_step *st = &s->steps[0];
    CU_ASSERT_STRING_EQUAL(st->name, "create");
    CU_ASSERT_EQUAL(st->timeout_ns, 60LL * 1000000000LL);
    const sr_op *op = &st->try_ops[0];
    CU_ASSERT_EQUAL(op->timeout_ns, 20LL * 1000000000LL);
    CU_ASSERT_EQUAL(op->pos.line, 21);
    CU_ASSERT_EQUAL(op->pos.col, 5);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(op->objects), 1);
    const cJSON *obj = cJSON_GetArrayItem(op->objects, 0);
    const cJSON *name = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "name");
    CU_ASSERT_STRING_EQUAL(name->valuestring, "web-{{index}}");
    sr_pos pos = {0, 0};
    CU_ASSERT(sr_scenario_pos(s, name, &pos));
    CU_ASSERT_EQUAL(pos.line, 28);
    CU_ASSERT_EQUAL(pos.col, 28);
    CU_ASSERT(sr_scenario_pos(s, obj, &pos));
    CU_ASSERT_EQUAL(pos.line, 26);
    CU_ASSERT(sr_scenario_pos(s, op->spec, &pos));
    CU_ASSERT_EQUAL(pos.line, 22);

    /* apply with object: an array made for it, whose item still has a position. */
    op = &s->steps[1].try_ops[0];
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(op->objects), 1);
    obj = cJSON_GetArrayItem(op->objects, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(obj, "kind")->valuestring, "CloudServer");
    CU_ASSERT(sr_scenario_pos(s, obj, &pos));
    CU_ASSERT_EQUAL(pos.line, 33);
    CU_ASSERT_EQUAL(pos.col, 9);
    CU_ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(op->spec, "expect"), "error")));
    CU_ASSERT_PTR_NULL(s->steps[2].try_ops[0].objects);

    /* try / catch / finally / cleanup. */
    st = &s->steps[12];
    CU_ASSERT_STRING_EQUAL(st->name, "guarded");
    CU_ASSERT_EQUAL(st->timeout_ns, 120LL * 1000000000LL);
    CU_ASSERT_EQUAL_FATAL(st->n_try, 11);
    CU_ASSERT_EQUAL_FATAL(st->n_catch, 1);
    CU_ASSERT_EQUAL_FATAL(st->n_finally, 2);
    CU_ASSERT_EQUAL_FATAL(st->n_cleanup, 1);
    static const sr_op_kind tk[] = {SR_OP_FAULT,    SR_OP_FAULT,     SR_OP_FAULT, SR_OP_FAULT,
                                    SR_OP_CRASH,    SR_OP_CRASH,     SR_OP_CRASH, SR_OP_OPERATOR,
                                    SR_OP_OPERATOR, SR_OP_APISERVER, SR_OP_SLEEP};
    for (size_t i = 0; i < 11; i++) CU_ASSERT_EQUAL(st->try_ops[i].kind, tk[i]);
    const cJSON *cap = cJSON_GetObjectItem(st->try_ops[3].spec, "capacity");
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(cap, "hk-1a")));
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(cap, "hk-1b")));
    CU_ASSERT_EQUAL(st->try_ops[8].timeout_ns, 10LL * 1000000000LL);
    CU_ASSERT_EQUAL(st->catch_ops[0].kind, SR_OP_EXEC);
    CU_ASSERT_EQUAL(st->finally_ops[1].kind, SR_OP_FAULT);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(st->finally_ops[1].spec, "clear")->valuestring,
                           "all");
    CU_ASSERT_EQUAL(st->cleanup_ops[0].kind, SR_OP_DELETE);
    CU_ASSERT_EQUAL(st->try_ops[0].pos.line, 64);
    CU_ASSERT_EQUAL(st->try_ops[0].pos.col, 9);
    sr_scenario_free(s);
}

static void test_apply_file(void)
{
    sr_scenario *s = load_ok(DATA "/valid/apply-file.yaml");
    if (!s) return;
    const sr_op *op = &s->steps[0].try_ops[0];
    CU_ASSERT_EQUAL(op->kind, SR_OP_APPLY);
    /* Two documents; the empty one after the last --- is not an object. */
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(op->objects), 2);
    const cJSON *second = cJSON_GetArrayItem(op->objects, 1);
    const cJSON *name = cJSON_GetObjectItem(cJSON_GetObjectItem(second, "metadata"), "name");
    CU_ASSERT_STRING_EQUAL(name->valuestring, "second-{{index}}");
    /* Positions in the applied file are its own. */
    sr_pos pos = {0, 0};
    CU_ASSERT(sr_scenario_pos(s, name, &pos));
    CU_ASSERT_EQUAL(pos.line, 9);
    CU_ASSERT_EQUAL(pos.col, 18);
    CU_ASSERT(sr_scenario_pos(s, second, &pos));
    CU_ASSERT_EQUAL(pos.line, 7);
    CU_ASSERT_EQUAL(pos.col, 1);

    /* The engine's path: expand a copy per index. */
    sr_tvars v = {
        .index = 1, .ns = "ns", .scenario = s->name, .run = "r", .seed = 1, .vars = s->setup.vars};
    char err[256];
    cJSON *x = sr_template_expand(cJSON_GetArrayItem(op->objects, 0), &v, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(x, "metadata"), "name")->valuestring, "first-1");
    /* Exactly one template with a number is a number; {{""}} in front keeps text. */
    const cJSON *data = cJSON_GetObjectItem(x, "data");
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(data, "n")));
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(data, "n")->valuedouble, 1);
    CU_ASSERT(cJSON_IsString(cJSON_GetObjectItem(data, "s")));
    if (cJSON_IsString(cJSON_GetObjectItem(data, "s")))
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(data, "s")->valuestring, "1");
    cJSON_Delete(x);

    cJSON *stranger = cJSON_CreateObject();
    CU_ASSERT_FALSE(sr_scenario_pos(s, stranger, &pos));
    CU_ASSERT_FALSE(sr_scenario_pos(s, NULL, &pos));
    cJSON_Delete(stranger);
    sr_scenario_free(s);
}

static void test_templates_file(void)
{
    sr_scenario *s = load_ok(DATA "/valid/templates.yaml");
    if (!s) return;
    CU_ASSERT_EQUAL(s->setup.seed, 42);
    /* timeout: "{{vars.wait}}" read through the variable. */
    CU_ASSERT_EQUAL(s->steps[1].timeout_ns, 20LL * 1000000000LL);
    const sr_op *op = &s->steps[0].try_ops[0];
    sr_tvars v = {.index = 2,
                  .ns = "ns-1",
                  .scenario = s->name,
                  .run = "run-1",
                  .seed = 42,
                  .vars = s->setup.vars};
    char err[256] = "";
    cJSON *x = sr_template_expand(cJSON_GetArrayItem(op->objects, 0), &v, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    const cJSON *md = cJSON_GetObjectItem(x, "metadata"), *spec = cJSON_GetObjectItem(x, "spec");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(md, "name")->valuestring, "web-2");
    const cJSON *labels = cJSON_GetObjectItem(md, "labels");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(labels, "run")->valuestring, "run-1");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(labels, "literal")->valuestring, "{{x}}");
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(spec, "cpu")));
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(spec, "image")->valuestring, "debian-12");
    cJSON_Delete(x);
    x = sr_template_expand(op->spec, &v, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(x, "count")));
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(x, "count")->valuedouble, 3);
    cJSON_Delete(x);
    sr_scenario_free(s);
}

/* The shipped library must always validate. */
static void test_suites_load(void)
{
    char *dir = "scenarios/suites";
    char **files = NULL;
    size_t n = 0;
    sr_errors e;
    sr_errors_init(&e);
    CU_ASSERT_EQUAL_FATAL(sr_collect_paths(&dir, 1, &files, &n, &e), 0);
    CU_ASSERT(n >= 1);
    for (size_t i = 0; i < n; i++) {
        sr_scenario_free(load_ok(files[i]));
        free(files[i]);
    }
    free(files);
    sr_errors_free(&e);
}

static void test_op_names(void)
{
    static const char *const want[] = {"apply", "patch", "delete",   "wait",      "assert", "error",
                                       "fault", "crash", "operator", "apiserver", "sleep",  "exec"};
    for (int k = 0; k < SR_OP_KIND_COUNT; k++)
        CU_ASSERT_STRING_EQUAL(sr_op_kind_name((sr_op_kind)k), want[k]);
    CU_ASSERT_STRING_EQUAL(sr_op_kind_name(SR_OP_KIND_COUNT), "?");
}

/* ---------------------------------------------------------------- the schema */

/* A structural JSON Schema walker: $ref (#/$defs/…), type, properties,
 * additionalProperties, required, items, enum/const, anyOf/oneOf/allOf.
 * Patterns and numeric bounds are the parser's job. Appends one line per
 * problem to out and returns how many. */
static int schema_walk(const cJSON *root, const cJSON *sch, const cJSON *inst, const char *path,
                       csl_buf *out);

static const cJSON *schema_resolve(const cJSON *root, const cJSON *sch)
{
    const cJSON *ref = cJSON_GetObjectItem(sch, "$ref");
    if (!cJSON_IsString(ref)) return sch;
    const char *p = ref->valuestring;
    if (strncmp(p, "#/$defs/", 8)) return NULL;
    return cJSON_GetObjectItem(cJSON_GetObjectItem(root, "$defs"), p + 8);
}

static bool type_is(const cJSON *inst, const char *t)
{
    if (!strcmp(t, "object")) return cJSON_IsObject(inst);
    if (!strcmp(t, "array")) return cJSON_IsArray(inst);
    if (!strcmp(t, "string")) return cJSON_IsString(inst);
    if (!strcmp(t, "boolean")) return cJSON_IsBool(inst);
    if (!strcmp(t, "null")) return cJSON_IsNull(inst);
    if (!strcmp(t, "number")) return cJSON_IsNumber(inst);
    if (!strcmp(t, "integer"))
        return cJSON_IsNumber(inst) && inst->valuedouble == (double)(long long)inst->valuedouble;
    return false;
}

static int schema_walk(const cJSON *root, const cJSON *sch_in, const cJSON *inst, const char *path,
                       csl_buf *out)
{
    const cJSON *sch = schema_resolve(root, sch_in);
    if (!sch) {
        csl_buf_printf(out, "%s: unresolvable $ref\n", path);
        return 1;
    }
    int bad = 0;
    if (cJSON_GetObjectItem(sch, "$ref") && sch != sch_in)
        bad += schema_walk(root, sch, inst, path, out);
    const cJSON *t = cJSON_GetObjectItem(sch, "type");
    if (t) {
        bool ok = false;
        if (cJSON_IsString(t)) ok = type_is(inst, t->valuestring);
        const cJSON *it = NULL;
        if (cJSON_IsArray(t)) cJSON_ArrayForEach(it, t) ok = ok || type_is(inst, it->valuestring);
        if (!ok) {
            csl_buf_printf(out, "%s: wrong type for the schema\n", path);
            return bad + 1;
        }
    }
    const cJSON *en = cJSON_GetObjectItem(sch, "enum"), *cn = cJSON_GetObjectItem(sch, "const");
    if (en) {
        bool ok = false;
        const cJSON *it = NULL;
        cJSON_ArrayForEach(it, en) ok = ok || cJSON_Compare(it, inst, true);
        if (!ok) bad++, csl_buf_printf(out, "%s: not in the schema's enum\n", path);
    }
    if (cn && !cJSON_Compare(cn, inst, true))
        bad++, csl_buf_printf(out, "%s: not the schema's const\n", path);
    static const char *const combs[] = {"anyOf", "oneOf", "allOf"};
    for (size_t k = 0; k < 3; k++) {
        const cJSON *arr = cJSON_GetObjectItem(sch, combs[k]);
        if (!arr) continue;
        int pass = 0, total = 0;
        const cJSON *br = NULL;
        cJSON_ArrayForEach(br, arr)
        {
            csl_buf tmp;
            csl_buf_init(&tmp);
            total++;
            if (schema_walk(root, br, inst, path, &tmp) == 0) pass++;
            csl_buf_free(&tmp);
        }
        bool ok = k == 0 ? pass >= 1 : k == 1 ? pass == 1 : pass == total;
        if (!ok)
            bad++, csl_buf_printf(out, "%s: %s holds for %d of %d branches\n", path, combs[k], pass,
                                  total);
    }
    const cJSON *req = cJSON_GetObjectItem(sch, "required");
    if (req && cJSON_IsObject(inst)) {
        const cJSON *it = NULL;
        cJSON_ArrayForEach(it, req) if (!cJSON_GetObjectItem(inst, it->valuestring))
        {
            bad++;
            csl_buf_printf(out, "%s: required %s missing\n", path, it->valuestring);
        }
    }
    const cJSON *props = cJSON_GetObjectItem(sch, "properties"),
                *addl = cJSON_GetObjectItem(sch, "additionalProperties");
    if (cJSON_IsObject(inst) && (props || addl)) {
        const cJSON *m = NULL;
        cJSON_ArrayForEach(m, inst)
        {
            char p[512];
            snprintf(p, sizeof p, "%s.%s", path, m->string);
            const cJSON *ps = props ? cJSON_GetObjectItem(props, m->string) : NULL;
            if (ps)
                bad += schema_walk(root, ps, m, p, out);
            else if (cJSON_IsFalse(addl))
                bad++, csl_buf_printf(out, "%s: key not allowed by the schema\n", p);
            else if (cJSON_IsObject(addl))
                bad += schema_walk(root, addl, m, p, out);
        }
    }
    const cJSON *items = cJSON_GetObjectItem(sch, "items");
    if (items && cJSON_IsArray(inst)) {
        int i = 0;
        const cJSON *it = NULL;
        cJSON_ArrayForEach(it, inst)
        {
            char p[512];
            snprintf(p, sizeof p, "%s[%d]", path, i++);
            bad += schema_walk(root, items, it, p, out);
        }
    }
    return bad;
}

static cJSON *load_schema(void)
{
    FILE *f = fopen(SCHEMA, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *s = cJSON_Parse(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(s, "$schema")->valuestring,
                           "https://json-schema.org/draft/2020-12/schema");
    return s;
}

static void schema_ok(const cJSON *schema, const char *file)
{
    csl_yaml_err ye;
    csl_yaml *y = csl_yaml_load_file(file, &ye);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    csl_buf out;
    csl_buf_init(&out);
    int bad = schema_walk(schema, schema, csl_yaml_doc(y, 0), "$", &out);
    CU_ASSERT_EQUAL(bad, 0);
    if (bad) fprintf(stderr, "\n  %s does not fit the schema:\n%s", file, csl_buf_str(&out));
    csl_buf_free(&out);
    csl_yaml_free(y);
}

/* What the parser accepts, the schema allows: the valid fixtures and the
 * shipped suites. */
static void test_schema_accepts_valid(void)
{
    cJSON *schema = load_schema();
    static const char *const dirs[] = {DATA "/valid", "scenarios/suites"};
    for (size_t d = 0; d < 2; d++) {
        char *dir = (char *)dirs[d];
        char **files = NULL;
        size_t n = 0;
        sr_errors e;
        sr_errors_init(&e);
        CU_ASSERT_EQUAL_FATAL(sr_collect_paths(&dir, 1, &files, &n, &e), 0);
        for (size_t i = 0; i < n; i++) {
            sr_scenario *s = sr_scenario_load(files[i], &e);
            if (s) schema_ok(schema, files[i]);
            sr_scenario_free(s);
            free(files[i]);
        }
        CU_ASSERT_EQUAL(e.n, 0);
        free(files);
        sr_errors_free(&e);
    }
    cJSON_Delete(schema);
}

/* The walker can fail: unknown keys at several levels are caught, and the
 * schema knows every operation the parser knows. */
static void test_schema_rejects(void)
{
    cJSON *schema = load_schema();
    static const char *const bad[] = {
        "{\"name\":\"x\",\"timout\":\"5m\",\"steps\":[{\"name\":\"a\",\"sleep\":{\"duration\":"
        "\"1s\"}}]}",
        "{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"aply\":{}}]}",
        "{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"wait\":{\"name\":\"b\",\"condition\":{"
        "\"type\":\"Ready\","
        "\"status\":\"True\",\"reasn\":\"x\"}}}]}",
        "{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"sleep\":{\"duration\":\"1s\"}}],\"slos\":{"
        "\"operatorCPU\":"
        "{\"limit\":\"1\",\"maxPercent\":5,\"max\":1}}}",
        "{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"try\":[{\"sleep\":{\"duration\":\"1s\"},"
        "\"wait\":{}}]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *inst = cJSON_Parse(bad[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(inst);
        csl_buf out;
        csl_buf_init(&out);
        CU_ASSERT(schema_walk(schema, schema, inst, "$", &out) > 0);
        csl_buf_free(&out);
        cJSON_Delete(inst);
    }
    const cJSON *step_props = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(schema, "$defs"), "step"),
                            "properties"),
        "");
    CU_ASSERT_PTR_NULL(step_props);
    const cJSON *props = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(schema, "$defs"), "step"), "properties");
    for (int k = 0; k < SR_OP_KIND_COUNT; k++) {
        CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(props, sr_op_kind_name((sr_op_kind)k)));
    }
    cJSON_Delete(schema);
}

/* ---------------------------------------------------------------- paths */

static void touch(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("name: x\n", f);
    fclose(f);
}

static void test_collect_paths(void)
{
    char tmpl[] = "/tmp/sr-paths-XXXXXX";
    char *dir = mkdtemp(tmpl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char sub[600], hid[600], deep[600];
    snprintf(sub, sizeof sub, "%s/b-sub", dir);
    snprintf(hid, sizeof hid, "%s/.git", dir);
    snprintf(deep, sizeof deep, "%s/b-sub/z", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(hid, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(deep, 0700), 0);
    touch(dir, "c.yaml");
    touch(dir, "a.yml");
    touch(dir, "notes.txt");
    touch(dir, ".hidden.yaml");
    touch(sub, "d.yaml");
    touch(deep, "e.yaml");
    touch(hid, "f.yaml");

    char single[600];
    snprintf(single, sizeof single, "%s/notes.txt", dir);
    char *paths[] = {dir, single};
    char **files = NULL;
    size_t n = 0;
    sr_errors e;
    sr_errors_init(&e);
    CU_ASSERT_EQUAL(sr_collect_paths(paths, 2, &files, &n, &e), 0);
    CU_ASSERT_EQUAL(e.n, 0);
    static const char *const want[] = {"/a.yml", "/b-sub/d.yaml", "/b-sub/z/e.yaml", "/c.yaml",
                                       "/notes.txt"};
    CU_ASSERT_EQUAL_FATAL(n, 5);
    for (size_t i = 0; i < n; i++) {
        char full[700];
        snprintf(full, sizeof full, "%s%s", dir, want[i]);
        CU_ASSERT_STRING_EQUAL(files[i], full);
        free(files[i]);
    }
    free(files);

    /* A missing path: -1, nothing returned, the path named. */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.yaml", dir);
    char *bad[] = {dir, missing};
    files = (char **)1;
    CU_ASSERT_EQUAL(sr_collect_paths(bad, 2, &files, &n, &e), -1);
    CU_ASSERT_PTR_NULL(files);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL_FATAL(e.n, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.items[0], missing));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.items[0], "No such file"));
    sr_errors_free(&e);

    /* A directory without scenarios is an error too. */
    char *empty[] = {hid};
    char cmd[700];
    snprintf(cmd, sizeof cmd, "%s/f.yaml", hid);
    CU_ASSERT_EQUAL(unlink(cmd), 0);
    CU_ASSERT_EQUAL(sr_collect_paths(empty, 1, &files, &n, &e), -1);
    CU_ASSERT_EQUAL(e.n, 1);
    sr_errors_free(&e);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static CU_TestInfo invalid_tests[] = {
    {"each invalid file: line:col and message", test_invalid_files},
    {"all errors collected; table covers every file", test_all_errors_collected},
    {"sr_errors", test_errors_api},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo valid_tests[] = {
    {"minimal: defaults", test_minimal_defaults},
    {"full: every key in the structure", test_full_structure},
    {"apply file: objects and their positions", test_apply_file},
    {"templates in a scenario", test_templates_file},
    {"scenarios/suites all load", test_suites_load},
    {"operation names", test_op_names},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo schema_tests[] = {
    {"schema allows whatever the parser accepts", test_schema_accepts_valid},
    {"schema walker rejects unknown keys", test_schema_rejects},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo path_tests[] = {
    {"collect files and directories", test_collect_paths},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"runner_scenario_invalid", NULL, NULL, NULL, NULL, invalid_tests},
    {"runner_scenario_valid", NULL, NULL, NULL, NULL, valid_tests},
    {"runner_scenario_schema", NULL, NULL, NULL, NULL, schema_tests},
    {"runner_scenario_paths", NULL, NULL, NULL, NULL, path_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
