/* template.h — {{NAME}} substitution in scenario strings.
 *
 * Names: index (only inside an operation with count), namespace, scenario,
 * run, seed, vars.NAME. A string that is exactly one {{…}} whose value is a
 * number becomes that number; anywhere else values are spliced as text.
 * {{"{{"}} writes a literal "{{". Checking is separate from expanding so
 * that `validate` can report an unknown name at its line:col before
 * anything runs. */
#ifndef SR_TEMPLATE_H
#define SR_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

typedef struct sr_tvars {
    long index;            /* < 0: no index in this context */
    const char *ns;        /* may be NULL at validation time */
    const char *scenario;
    const char *run;
    uint64_t seed;
    const cJSON *vars;     /* object; may be NULL */
} sr_tvars;

/* API */

/* Checks every string in tree (values and keys) for unknown or malformed
 * {{…}}. has_index: whether {{index}} is allowed here. vars: the
 * scenario's vars object (may be NULL). Returns NULL when all is well, or
 * the first offending string node with a message in err. */
const cJSON *sr_template_check(const cJSON *tree, bool has_index, const cJSON *vars, char *err,
                               size_t errsz);

/* A new tree with every string expanded (caller owns it). NULL with err on
 * an unknown name (which validation should have caught) or no memory. */
cJSON *sr_template_expand(const cJSON *tree, const sr_tvars *v, char *err, size_t errsz);

/* One string; the result is malloc'd. NULL with err. */
char *sr_template_expand_str(const char *s, const sr_tvars *v, char *err, size_t errsz);

#endif
