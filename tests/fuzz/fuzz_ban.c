/*
 * fuzz_ban.c - a cache's answer to micad's BAN (ca/ban.c): the status
 * line parser, fed every prefix the way bytes arrive from the socket,
 * and the [http] ban_urls entry parser (conf/conf.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ban.h"
#include "conf/conf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char url[600];
	char host[256];
	size_t n, cap = size < BAN_RESP_MAX ? size : BAN_RESP_MAX;
	int code = -1, port = 0;
	enum ban_status st;

	for (n = 0; n <= cap; n++) {
		st = ban_parse_status(data, n, &code);
		if (st == BAN_STATUS_OK && (code < 100 || code > 999))
			abort();
		if (st == BAN_STATUS_MORE && n >= BAN_RESP_MAX)
			abort();
		if (st != BAN_STATUS_MORE)
			break;
	}
	if (size < sizeof(url)) {
		memcpy(url, data, size);
		url[size] = '\0';
		if (conf_ban_url_parse(url, host, sizeof(host), &port) &&
		    (port < 1 || port > 65535 || strlen(host) == 0))
			abort();
	}
	return 0;
}
