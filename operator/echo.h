/* The watch echoes each of the operator's own writes back as an update. The
 * pass that made a write already decided on the object as written, so its
 * echo needs no pass of its own: at 1,000 objects created at once that
 * second pass was a third of all passes, each with a cloud read.
 *
 * An echo may arrive before the write's reply does (the API server sends
 * the watch event and the reply at about the same time), so an update that
 * arrives while a write to its object is in flight is held, and judged when
 * the write ends: the write's own version is dropped, anything else queues
 * the object. A resync (the same version twice) is never an echo; callers
 * do not ask.
 *
 * Thread-safe. The state of an object goes when nothing is pending for it. */
#ifndef OP_ECHO_H
#define OP_ECHO_H

#include <stdbool.h>

typedef struct op_echo op_echo;

/* API */

op_echo *op_echo_new(void);
void op_echo_free(op_echo *e);

/* A write to key is about to be sent. */
void op_echo_write_begin(op_echo *e, const char *key);
/* It ended: rv is the resourceVersion it produced, NULL when it failed.
 * Returns true when an update that was not this write's echo arrived while
 * it was in flight: the caller queues key. */
bool op_echo_write_end(op_echo *e, const char *key, const char *rv);
/* An update of key to version rv arrived. Returns true when the caller
 * queues key; false for the echo of one of our writes, or while a write to
 * key is in flight (then op_echo_write_end decides). */
bool op_echo_update(op_echo *e, const char *key, const char *rv);
/* key is gone: forget it. */
void op_echo_forget(op_echo *e, const char *key);
/* Objects with state (for tests and the memory benchmark). */
unsigned op_echo_size(op_echo *e);

#endif
