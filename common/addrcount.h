/*
 * addrcount.h - how many connections each client address holds: a fixed
 * hash table (SipHash with a random key, so a client cannot choose
 * colliding addresses) sized for the connection limit.  Not thread-safe:
 * the caller serialises (a listener's lock or its single loop thread).
 */
#ifndef MICA_ADDRCOUNT_H
#define MICA_ADDRCOUNT_H

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* A client address: IPv4 as an IPv4-mapped IPv6 address. */
struct addr_key {
	uint8_t	b[16];
};

struct addrcount;

/* A table for at most max_addrs distinct addresses; NULL on error. */
struct addrcount	*addrcount_new(size_t max_addrs);
void			 addrcount_free(struct addrcount *);
/* The key of sa (AF_INET or AF_INET6; anything else: all zero). */
void			 addr_key_from_sa(struct addr_key *out,
			    const struct sockaddr *sa);
/* The key as text ("127.0.0.2", "::1") into buf (INET6_ADDRSTRLEN). */
void			 addr_key_str(const struct addr_key *k, char *buf,
			    size_t len);
/* Connections counted for k (0 if none). */
int			 addrcount_get(const struct addrcount *,
			    const struct addr_key *k);
/* Counts one more for k.  Returns 1, or 0 when the table is full. */
int			 addrcount_add(struct addrcount *,
			    const struct addr_key *k);
/* Counts one less for k (its entry goes at 0). */
void			 addrcount_del(struct addrcount *,
			    const struct addr_key *k);

#endif
