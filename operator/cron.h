/* cron.h — the 5-field cron schedules of spec.backup.schedule, in UTC.
 *
 * One idea: a schedule is five bit sets (minutes, hours, days of the month,
 * months, days of the week), so matching a time is five bit tests and the
 * next run is found by jumping from one set bit to the next — month by
 * month, day by day, hour by hour — never minute by minute.
 *
 * Grammar (the CRD's, docs/crds.md): minute (0-59), hour (0-23), day of
 * month (1-31), month (1-12 or JAN-DEC), day of week (0-7 or SUN-SAT; 0 and
 * 7 are Sunday), separated by spaces. Each field is a comma list of items;
 * an item is "*", a value, or a range "a-b", optionally followed by a step
 * "/n" (n from 1 to 99). A lone value with a step, "a/n", means "a-max/n"
 * (as Kubernetes' CronJob reads it; the CRD accepts it). Names are three
 * letters in any case. No macros, no "?", "L", "W" or "#".
 *
 * Day of month and day of week combine as in Vixie cron: when both fields
 * are restricted (neither begins with "*"), a day matches when either
 * matches ("0 0 1 * MON" runs on the 1st and on every Monday); when one of
 * them begins with "*", a day must match both. */
#ifndef OP_CRON_H
#define OP_CRON_H

#include <stdbool.h>
#include <stdint.h>

typedef struct op_cron {
    uint64_t minutes;   /* bit m: minute m, 0..59 */
    uint32_t hours;     /* bit h: hour h, 0..23 */
    uint32_t days;      /* bit d: day of month d, 1..31 */
    uint16_t months;    /* bit m: month m, 1..12 */
    uint8_t weekdays;   /* bit w: 0 Sunday .. 6 Saturday (7 is folded into 0) */
    bool days_star;     /* the day-of-month field began with '*' */
    bool weekdays_star; /* the day-of-week field began with '*' */
} op_cron;

#define OP_CRON_ERR_LEN 256
/* How many missed start times op_cron_missed counts before giving up, as
 * Kubernetes' CronJob controller does. */
#define OP_CRON_MISSED_MAX 100

/* What a schedule missed between the last run and now. */
typedef struct op_cron_missed {
    int64_t time;  /* the most recent start time in the window, or -1 */
    int count;     /* start times in the window, at most max + 1 */
    bool too_many; /* count went past max: refuse to run, like CronJob */
} op_cron_missed;

/* API */

/* Parses expr into *out. Returns 0, or -1 with *out untouched and err (when
 * not NULL) naming the field, the 1-based column in expr and what is
 * allowed, e.g. `hour (field 2, column 3): 24 is out of range 0-23`. */
int op_cron_parse(const char *expr, op_cron *out, char err[OP_CRON_ERR_LEN]);

/* Whether the minute holding t (epoch seconds, UTC) is a start time. */
bool op_cron_matches(const op_cron *c, int64_t t);

/* The first start time strictly after t (epoch seconds, UTC; seconds of the
 * result are 0), or -1 when there is none within ten years (a schedule such
 * as "0 0 31 2 *" never fires) or t is outside years 1..9999. */
int64_t op_cron_next(const op_cron *c, int64_t t);

/* The start times in the window (earliest, now] where earliest is the later
 * of `last` (the last start time, or when the schedule began) and
 * now - deadline_s (deadline_s < 0: no deadline), as CronJob's
 * startingDeadlineSeconds. Counts at most max + 1 of them (max <= 0 means
 * OP_CRON_MISSED_MAX): past max, too_many is set and time is -1, and the
 * caller should refuse to run and say so. */
op_cron_missed op_cron_missed_since(const op_cron *c, int64_t last, int64_t now, int64_t deadline_s,
                                    int max);

/* Calendar helpers in the proleptic Gregorian calendar, UTC (shared with the
 * reconciler's snapshot names). days: days since 1970-01-01. */
int64_t op_days_from_civil(int64_t y, int m, int d);
void op_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

#endif
