/* yaml.h — YAML documents into cJSON trees, keeping where each node came
 * from so that errors can say file:line:column.
 *
 * libyaml's event parser builds plain cJSON values; a side table maps every
 * cJSON node to the line and column (1-based) of its value in the source
 * (for a mapping member, where its value starts; csl_yaml_key_pos gives the
 * key's). The trees stay ordinary cJSON that any code can walk; they belong
 * to the csl_yaml that made them.
 *
 * Typing of plain (unquoted) scalars follows the YAML 1.2 core schema:
 * null ~ and empty → null; true/false (any case of those words) → bool;
 * decimal, 0x hex, 0o octal, .inf/.nan and floats → number; anything else
 * → string. Quoted and block scalars are always strings. Aliases are
 * expanded (bounded, against "billion laughs"); merge keys (<<) are applied;
 * duplicate keys in one mapping are an error. */
#ifndef CSL_YAML_H
#define CSL_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

typedef struct csl_yaml csl_yaml;

typedef struct csl_yaml_err {
    char file[256];  /* the name given at load, e.g. a path */
    int line;        /* 1-based; 0 when not known */
    int col;         /* 1-based; 0 when not known */
    char msg[256];   /* what is wrong and what was expected */
} csl_yaml_err;

/* API */

/* Loads every document of a file (a stream may hold several, split by ---).
 * Returns NULL on error and fills *err (an unreadable file gives line 0). */
csl_yaml *csl_yaml_load_file(const char *path, csl_yaml_err *err);
/* Same for text in memory; name is used in positions and error messages. */
csl_yaml *csl_yaml_load_string(const char *text, size_t len, const char *name, csl_yaml_err *err);
void csl_yaml_free(csl_yaml *y);

const char *csl_yaml_name(const csl_yaml *y);
size_t csl_yaml_count(const csl_yaml *y);
/* Document i's root (NULL past the end; an empty document is a cJSON null).
 * Owned by y. */
cJSON *csl_yaml_doc(const csl_yaml *y, size_t i);
/* Detaches document i from y: the caller owns it; positions are lost. The
 * slot stays, so csl_yaml_doc(y, i) is NULL afterwards and other indices do
 * not shift. NULL when i is past the end or already taken. */
cJSON *csl_yaml_take_doc(csl_yaml *y, size_t i);

/* Where node's value starts. False when node is not from y. */
bool csl_yaml_pos(const csl_yaml *y, const cJSON *node, int *line, int *col);
/* For a member of a mapping, where its key starts. */
bool csl_yaml_key_pos(const csl_yaml *y, const cJSON *node, int *line, int *col);

/* Fills err with y's name, node's position (0:0 when node is NULL or
 * unknown) and a printf-formatted message. */
void csl_yaml_errorf(const csl_yaml *y, const cJSON *node, csl_yaml_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "file:line:col: msg" (or "file: msg" without a position). */
void csl_yaml_err_format(const csl_yaml_err *err, char *out, size_t outsz);

#endif
