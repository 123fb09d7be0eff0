/* match.h — partial matching of an expected tree against an actual one.
 *
 * Mappings: every expected key must match (extra actual keys are ignored).
 * Arrays: every expected element matches a distinct actual element, in any
 * order. Scalars compare equal (2 == 2.0; a string never equals a number).
 * Expected null: absent or null. An expected string of the form "(…)" is an
 * expression (expr.h) evaluated with @ = the actual value. A mismatch is
 * reported as one line per difference: "path.to[0].field: expected X, got Y". */
#ifndef SR_MATCH_H
#define SR_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "csl/buf.h"

/* API */

/* True when actual matches expected. When diff is not NULL, the lines
 * describing each mismatch are appended to it (nothing on a match). An
 * expression that fails to parse or evaluate is a mismatch whose line
 * says why. */
bool sr_match(const cJSON *expected, const cJSON *actual, csl_buf *diff);

/* Checks every expression string inside expected parses. Returns NULL, or
 * the first bad string node with err — for validation. */
const cJSON *sr_match_check(const cJSON *expected, char *err, size_t errsz);

/* Renders v as compact, YAML-like text for messages (at most max bytes,
 * "…" when cut); appended to out. */
void sr_render(const cJSON *v, size_t max, csl_buf *out);

#endif
