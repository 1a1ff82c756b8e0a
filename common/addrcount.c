/*
 * addrcount.c - connections per address: open addressing with linear
 * probing and backward-shift deletion (no tombstones), at most half full.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/addrcount.h"

struct slot {
	struct addr_key	k;
	int		n;		/* 0: free */
};

struct addrcount {
	struct slot	*s;
	size_t		 mask;		/* capacity - 1 */
	size_t		 used;
	size_t		 max;		/* used <= max <= capacity / 2 */
	uint8_t		 key[crypto_shorthash_KEYBYTES];
};

struct addrcount *
addrcount_new(size_t max_addrs)
{
	struct addrcount *t;
	size_t cap = 16;

	if (max_addrs == 0 || max_addrs > ((size_t)1 << 24))
		return NULL;
	while (cap < 2 * max_addrs)
		cap <<= 1;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if ((t->s = calloc(cap, sizeof(*t->s))) == NULL) {
		free(t);
		return NULL;
	}
	t->mask = cap - 1;
	t->max = max_addrs;
	randombytes_buf(t->key, sizeof(t->key));
	return t;
}

void
addrcount_free(struct addrcount *t)
{
	if (t == NULL)
		return;
	free(t->s);
	free(t);
}

void
addr_key_from_sa(struct addr_key *out, const struct sockaddr *sa)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		out->b[10] = out->b[11] = 0xff;
		memcpy(out->b + 12, &((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6)
		memcpy(out->b, &((const struct sockaddr_in6 *)(const void *)
		    sa)->sin6_addr, 16);
}

void
addr_key_str(const struct addr_key *k, char *buf, size_t len)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	if (memcmp(k->b, mapped, sizeof(mapped)) == 0) {
		if (inet_ntop(AF_INET, k->b + 12, buf, (socklen_t)len) != NULL)
			return;
	} else if (inet_ntop(AF_INET6, k->b, buf, (socklen_t)len) != NULL)
		return;
	snprintf(buf, len, "?");
}

static size_t
home(const struct addrcount *t, const struct addr_key *k)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, k->b, sizeof(k->b), t->key);
	memcpy(&v, h, sizeof(v));
	return (size_t)v & t->mask;
}

/* The slot holding k, or the free slot where it would go. */
static size_t
find(const struct addrcount *t, const struct addr_key *k)
{
	size_t i = home(t, k);

	while (t->s[i].n != 0 && memcmp(&t->s[i].k, k, sizeof(*k)) != 0)
		i = (i + 1) & t->mask;
	return i;
}

int
addrcount_get(const struct addrcount *t, const struct addr_key *k)
{
	return t->s[find(t, k)].n;
}

int
addrcount_add(struct addrcount *t, const struct addr_key *k)
{
	size_t i = find(t, k);

	if (t->s[i].n == 0) {
		if (t->used >= t->max)
			return 0;
		t->s[i].k = *k;
		t->used++;
	}
	t->s[i].n++;
	return 1;
}

void
addrcount_del(struct addrcount *t, const struct addr_key *k)
{
	size_t i = find(t, k), j, h;

	if (t->s[i].n == 0 || --t->s[i].n > 0)
		return;
	t->used--;
	/* backward shift: move up each later entry of the run whose home
	 * does not lie (cyclically) between the hole and itself */
	for (j = (i + 1) & t->mask; t->s[j].n != 0; j = (j + 1) & t->mask) {
		h = home(t, &t->s[j].k);
		if (((j - h) & t->mask) >= ((j - i) & t->mask)) {
			t->s[i] = t->s[j];
			i = j;
		}
	}
	memset(&t->s[i], 0, sizeof(t->s[i]));
}
