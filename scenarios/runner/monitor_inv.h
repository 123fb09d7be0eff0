/* monitor_inv.h — the monitor's decisions, pure: snapshots in, verdicts out.
 *
 * Everything the monitor concludes — which objects exist and are Ready,
 * when a create-to-Ready pair completes, when a fault has been recovered
 * from, how much a counter rose, and whether each reconcile invariant
 * holds — is decided here from data the monitor fetched (CloudServer JSON
 * from the informer or a list, mockcloud's /_mock/state instances and
 * idempotency keys, /_mock/journal entries). Nothing here does I/O or reads
 * a clock: times are arguments. So every rule is unit-tested on hand-built
 * snapshots (tests/unit/test_runner_invariants.c) and documented in
 * docs/runner-checks.md. Not thread-safe: monitor.c holds its lock. */
#ifndef SR_MONITOR_INV_H
#define SR_MONITOR_INV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

/* The instance tags the operator writes (docs/operator-reconcile.md). */
#define SRM_TAG_UID "cloudserver.dev/uid"
#define SRM_TAG_NAME "cloudserver.dev/name"

/* ---------------------------------------------------------------- violations */

/* A list of one-line violation messages (and, for deduplication, an
 * optional key per message: NULL when none). */
typedef struct srm_viols {
    char **items;
    char **keys;
    size_t n, cap;
} srm_viols;

/* API: violations */

/* Appends a message (printf-style) with dedupe key (may be NULL). 0, or -1
 * on no memory. */
int srm_viols_add(srm_viols *v, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* True when a message with this key is already in v. */
bool srm_viols_has_key(const srm_viols *v, const char *key);
/* The first max messages joined by "; ", then " (and N more)" when some
 * were left out. malloc'd; "" for an empty list; NULL on no memory. */
char *srm_viols_summary(const srm_viols *v, size_t max);
void srm_viols_free(srm_viols *v);

/* ---------------------------------------------------------------- objects */

/* True for mockcloud states that hold a server: every state but
 * "deleting" and "crashed" (pending, running, resizing, stopping, stopped,
 * starting, rebooting). */
bool srm_instance_live(const char *state);
/* True when a CloudServer has condition Ready with status "True". */
bool srm_cs_ready(const cJSON *cs);

/* What the monitor remembers of each CloudServer it saw in the namespace
 * (objects stay in the table after they are deleted, with gone set). */
typedef struct srm_object {
    char *uid;
    char *name;
    char *instance_id;    /* status.instanceID, or NULL */
    int64_t generation;   /* metadata.generation */
    int64_t observed_gen; /* status.observedGeneration; -1 when absent */
    bool ready;           /* Ready=True */
    bool deleting;        /* metadata.deletionTimestamp set */
    bool gone;            /* deleted from the API server */
    bool retain;          /* spec.deletionPolicy Retain */
    int failover_max;     /* the largest status.failoverCount seen */
} srm_object;

typedef struct srm_objects {
    srm_object *v;
    size_t n, cap;
} srm_objects;

/* API: objects */

srm_object *srm_objects_find(const srm_objects *t, const char *uid);
/* Adds or updates the record of CloudServer cs (by metadata.uid). A uid
 * seen again after being gone is live again. Returns the record; NULL when
 * cs has no uid or on no memory. */
srm_object *srm_objects_observe(srm_objects *t, const cJSON *cs);
/* Marks uid gone (nothing when unknown). */
void srm_objects_gone(srm_objects *t, const char *uid);
/* Objects present (not gone), and of them those with Ready=True. */
void srm_objects_counts(const srm_objects *t, int *objects, int *ready);
void srm_objects_free(srm_objects *t);

/* The states of the instances of one /_mock/state snapshot, sorted by id
 * (looked up once per object by the recovery check). */
typedef struct srm_cloud_inst {
    char *id;
    char *state;
} srm_cloud_inst;

typedef struct srm_cloud {
    srm_cloud_inst *v;
    size_t n;
} srm_cloud;

/* API: cloud snapshot */

/* Builds c from an "instances" array (replacing what c held). 0, or -1 on
 * no memory (c then empty). */
int srm_cloud_set(srm_cloud *c, const cJSON *instances);
/* The state of instance id, or NULL when it is not in the snapshot. */
const char *srm_cloud_state(const srm_cloud *c, const char *id);
void srm_cloud_free(srm_cloud *c);

/* The recovery condition: every object present and not being deleted has
 * Ready=True, observedGeneration == generation and, when cloud is not
 * NULL, its status.instanceID running in cloud. Vacuously true with no
 * objects. */
bool srm_recovered(const srm_objects *t, const srm_cloud *cloud);

/* ---------------------------------------------------------------- create-to-Ready */

typedef struct srm_ctr_entry {
    char *uid;
    int64_t created_ns; /* 0: not created through the engine (yet) */
    int64_t ready_ns;   /* 0: not seen Ready yet */
    bool done;
} srm_ctr_entry;

typedef struct srm_ctr {
    srm_ctr_entry *v;
    size_t n, cap;
    size_t created; /* how many uids the engine reported */
} srm_ctr;

/* API: create-to-Ready. Both calls return the latency in ns (ready −
 * created, ≥ 0) when this call completes the pair for uid, else -1. Only
 * the first of each is kept; a pair completes once. Times are > 0. */
int64_t srm_ctr_created(srm_ctr *c, const char *uid, int64_t t_ns);
int64_t srm_ctr_ready(srm_ctr *c, const char *uid, int64_t t_ns);
void srm_ctr_free(srm_ctr *c);

/* ---------------------------------------------------------------- fault windows */

typedef struct srm_window {
    char *kind, *what;
    long index; /* the window's event in the scenario's timeline */
    bool open;
} srm_window;

typedef struct srm_faults {
    srm_window *w;
    size_t n, cap;
    int64_t *clears; /* recovery clocks running: their start (the clear) */
    char **clear_what;
    size_t n_clears, cap_clears;
} srm_faults;

/* API: fault windows and recovery clocks */

/* Records a window opened at timeline index. 0, or -1 on no memory. */
int srm_fault_open(srm_faults *f, const char *kind, const char *what, long index);
/* Closes the latest open window of kind/what and, when clock is true,
 * starts a recovery clock at t_ns. Returns the closed window's timeline
 * index, or -1 when none was open (a fault that clears at once, such as a
 * crash; the clock starts all the same). -2 on no memory. */
long srm_fault_clear(srm_faults *f, const char *kind, const char *what, int64_t t_ns, bool clock);
/* The objects have recovered as of a snapshot taken at seen_ns; the
 * moment is now_ns: ends every clock started at or before seen_ns,
 * writing its duration (now_ns − start) into out (up to max; the rest are
 * ended too). Returns how many ended. */
size_t srm_recovery_end(srm_faults *f, int64_t seen_ns, int64_t now_ns, int64_t *out, size_t max);
/* Clocks still running; *earliest gets the oldest start (when any) and
 * *what its fault. */
size_t srm_recovery_pending(const srm_faults *f, int64_t *earliest, const char **what);
/* The timeline indexes of windows still open (up to max). */
size_t srm_faults_open_indexes(const srm_faults *f, long *out, size_t max);
void srm_faults_free(srm_faults *f);

/* ---------------------------------------------------------------- counters */

/* One Prometheus counter of one process, followed across scrapes. */
typedef struct srm_counter {
    bool have;
    double last;
    double start_time; /* process_start_time_seconds of the last reading */
} srm_counter;

/* Feeds a reading; returns how much the counter rose since the previous
 * one: 0 on the first reading (a baseline), the whole value when the
 * process restarted (start_time changed, or the value fell). */
double srm_counter_feed(srm_counter *c, double value, double start_time);

/* ---------------------------------------------------------------- Events */

typedef void (*srm_count_fn)(void *ctx, const char *reason, long n);
/* For each events.k8s.io/v1 Event in items with type Warning: calls
 * fn(reason, occurrences), occurrences = series.count when the Event
 * carries a series (else deprecatedCount when > 1, else 1). Returns the
 * number of Warning Events. */
size_t srm_warning_reasons(const cJSON *items, srm_count_fn fn, void *ctx);

/* ---------------------------------------------------------------- instances seen */

/* Every instance ever seen carrying a uid tag (from the 1 s snapshots and
 * the final one), so an instance that lived and died between two
 * snapshots of the journal can still be tied to its object. */
typedef struct srm_seen {
    char **ids;
    char **uids;
    size_t n, cap;
} srm_seen;

/* API: instances seen */

/* Records every instance of the array that carries a uid tag. 0, or -1 on
 * no memory. */
int srm_seen_add(srm_seen *s, const cJSON *instances);
/* The uid tag instance id was seen with, or NULL. */
const char *srm_seen_uid(const srm_seen *s, const char *id);
void srm_seen_free(srm_seen *s);

/* ---------------------------------------------------------------- invariants */

/* API: invariants. Each appends one message per violation to out and
 * returns how many it appended (-1 on no memory). instances: the
 * "instances" array of GET /_mock/state; objects: an array of CloudServer
 * JSON; ns: the scenario's namespace. */

/* oneInstancePerObject: for each object uid (of t, or whose name tag is
 * "<ns>/…"), at most one live instance carries its uid tag. Message:
 * "object web-3 (uid U): 2 live instances i-1 (running), i-2 (pending)";
 * key: "U i-1 i-2" (so a continuing violation is recorded once). */
long srm_check_one_instance(const cJSON *instances, const srm_objects *t, const char *ns,
                            srm_viols *out);
/* statusMatchesCloud: for each object with Ready=True that is not being
 * deleted: status.instanceID names an instance of the snapshot that is
 * running, with cpu = spec.cpu, memoryMiB = spec.memory in MiB, diskGiB =
 * spec.disk in GiB, image = spec.image and zone = status.zone (spec.zone
 * when status.zone is absent: a replacement may legitimately run in
 * another zone of the region). Message: "object web-3 (uid U): Ready=True
 * but <mismatch>[, <mismatch>…]". */
long srm_check_status(const cJSON *objects, const cJSON *instances, srm_viols *out);
/* observedGeneration: for each object with Ready=True that is not being
 * deleted: status.observedGeneration == metadata.generation. */
long srm_check_observed_generation(const cJSON *objects, srm_viols *out);
/* finalizersReleased: no object (of a list taken after cleanup) carries a
 * deletionTimestamp. */
long srm_check_finalizers(const cJSON *objects, srm_viols *out);
/* noOrphans: no instance that is not "deleting" still carries the uid tag
 * of an object that is gone (instances the operator untagged for Retain no
 * longer carry it, so they are not orphans). */
long srm_check_orphans(const cJSON *instances, const srm_objects *t, srm_viols *out);
/* noDuplicateCreates, from three sources:
 * - creates: journal entries of POST /v1/instances (the scenario's): each
 *   must carry an Idempotency-Key;
 * - keys: the "idempotencyKeys" array of /_mock/state: each instance
 *   create (request "POST /v1/instances") made its target; the target is
 *   tied to an object by the uid tag it was seen with (seen), else by a key
 *   of the contract's form for its uid ("<uid>", "<uid>-attempt-N");
 * - seen: instances seen with a uid tag.
 * Then for each object: every keyed create tied to it by its tag used a
 * key of that form (the reconcile contract; a fresh key per retry is how
 * duplicates happen),
 * and the distinct instances created for it number at most 1 +
 * failover_max (every legitimate second create — crash, vanish,
 * provisioning timeout — is a failover the operator counts in
 * status.failoverCount). */
long srm_check_duplicates(const cJSON *creates, const cJSON *keys, const srm_seen *seen,
                          const srm_objects *t, srm_viols *out);

#endif
