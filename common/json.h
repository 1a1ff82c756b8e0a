/*
 * json.h - writing JSON text into a struct wb (admin --json output,
 * notification payloads).  Output only; mica parses no JSON.
 */
#ifndef MICA_JSON_H
#define MICA_JSON_H

#include <stdint.h>

#include "common/bytes.h"

/* Appends s as a quoted JSON string with escapes. */
void	json_str(struct wb *, const char *s);
/* Appends "key": "value" (with a leading comma unless first). */
void	json_kv_str(struct wb *, int first, const char *key, const char *v);
void	json_kv_u64(struct wb *, int first, const char *key, uint64_t v);
void	json_kv_i64(struct wb *, int first, const char *key, int64_t v);
void	json_kv_bool(struct wb *, int first, const char *key, int v);

#endif
