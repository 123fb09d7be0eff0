/* progress.h — what the person at the terminal sees while a run goes on:
 * a live status line rewritten in place when stderr is a terminal, plain
 * one-event-per-line output otherwise (CI logs, pipes).
 *
 * Thread-safe: scenario threads report into one sr_progress; each report
 * is one write, so lines never interleave. Nothing ticks on its own (no
 * thread, no timer): the line changes when something happens. */
#ifndef SR_PROGRESS_H
#define SR_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "result.h"

typedef struct sr_progress sr_progress;

/* API */

/* tty: the live line; else plain lines. out: where to write (stderr).
 * total: scenarios expected (0: unknown). NULL on no memory. */
sr_progress *sr_progress_new(FILE *out, bool tty, size_t total);
void sr_progress_free(sr_progress *p);
void sr_progress_scenario_start(sr_progress *p, const char *scenario, const char *ns);
/* A step ended (status and its duration in scenario seconds). */
void sr_progress_step(sr_progress *p, const char *scenario, const char *step, sr_status st,
                      double duration_s, const char *message);
void sr_progress_scenario_end(sr_progress *p, const char *scenario, sr_status st,
                              double real_s, const char *message);
/* A free-form line (the environment coming up, the report written). */
void sr_progress_note(sr_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears the live line (before the final summary). */
void sr_progress_done(sr_progress *p);

#endif
