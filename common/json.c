/*
 * json.c - JSON string escaping and key/value helpers.
 */
#include <inttypes.h>
#include <stdio.h>

#include "common/json.h"

void
json_str(struct wb *b, const char *s)
{
	const unsigned char *p;
	char esc[8];

	wb_u8(b, '"');
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			wb_str(b, "\\\"");
			break;
		case '\\':
			wb_str(b, "\\\\");
			break;
		case '\n':
			wb_str(b, "\\n");
			break;
		case '\r':
			wb_str(b, "\\r");
			break;
		case '\t':
			wb_str(b, "\\t");
			break;
		default:
			if (*p < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
				wb_str(b, esc);
			} else
				wb_u8(b, *p);
		}
	}
	wb_u8(b, '"');
}

static void
key(struct wb *b, int first, const char *k)
{
	if (!first)
		wb_u8(b, ',');
	json_str(b, k);
	wb_u8(b, ':');
}

void
json_kv_str(struct wb *b, int first, const char *k, const char *v)
{
	key(b, first, k);
	json_str(b, v);
}

void
json_kv_u64(struct wb *b, int first, const char *k, uint64_t v)
{
	char num[32];

	key(b, first, k);
	snprintf(num, sizeof(num), "%" PRIu64, v);
	wb_str(b, num);
}

void
json_kv_i64(struct wb *b, int first, const char *k, int64_t v)
{
	char num[32];

	key(b, first, k);
	snprintf(num, sizeof(num), "%" PRId64, v);
	wb_str(b, num);
}

void
json_kv_bool(struct wb *b, int first, const char *k, int v)
{
	key(b, first, k);
	wb_str(b, v ? "true" : "false");
}
