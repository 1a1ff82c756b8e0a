/*
 * cache.c - signed OCSP responses keyed on the exact request bytes.
 *
 * Sharded hash table: each shard has a mutex, chained buckets and a FIFO
 * list for eviction.  A hit costs one keyed hash (SipHash, so clients
 * cannot aim collisions at one bucket), one short critical section and an
 * atomic reference increment; the DER is never copied or decoded.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/log.h"
#include "ocsp/ocsp_int.h"

#define NSHARDS		16
#define MIN_BUCKETS	16

struct entry {
	struct entry		*hnext;		/* bucket chain */
	struct entry		*prev, *next;	/* FIFO, oldest first */
	uint64_t		 hash;
	struct ocsp_blob	*blob;
	size_t			 key_len;
	size_t			 num_serials;
	size_t			 cost;		/* bytes charged */
	uint8_t			*key;
	uint8_t			(*serials)[OCSP_SERIAL_LEN];
};

struct shard {
	pthread_mutex_t	 mu;
	struct entry	**buckets;
	size_t		 nbuckets;	/* power of two */
	struct entry	*head, *tail;
	size_t		 count;
	size_t		 bytes;
} __attribute__((aligned(64)));

struct ocsp_cache {
	struct shard	 shards[NSHARDS];
	size_t		 max_entries;	/* per shard */
	size_t		 max_bytes;	/* per shard */
	uint8_t		 key[crypto_shorthash_KEYBYTES];
};

struct ocsp_blob *
ocsp_blob_new(const uint8_t *der, size_t len)
{
	struct ocsp_blob *b;

	if ((b = calloc(1, sizeof(*b) + len)) == NULL)
		return NULL;
	atomic_init(&b->refs, 1);
	b->signer_not_before = INT64_MIN;	/* set by the signer */
	b->signer_not_after = INT64_MAX;
	b->len = len;
	memcpy(b->der, der, len);
	return b;
}

void
ocsp_blob_ref(struct ocsp_blob *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void
ocsp_blob_unref(struct ocsp_blob *b)
{
	if (b == NULL)
		return;
	if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
		free(b->serials);
		free(b);
	}
}

struct ocsp_cache *
ocsp_cache_new(size_t max_entries, size_t max_bytes)
{
	struct ocsp_cache *c;
	size_t i, nb;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->max_entries = max_entries / NSHARDS + 1;
	c->max_bytes = max_bytes / NSHARDS + 1;
	nb = MIN_BUCKETS;
	while (nb < c->max_entries && nb < (1u << 20))
		nb <<= 1;
	randombytes_buf(c->key, sizeof(c->key));
	for (i = 0; i < NSHARDS; i++) {
		struct shard *s = &c->shards[i];

		if (pthread_mutex_init(&s->mu, NULL) != 0)
			fatalx("ocsp cache: mutex init");
		s->nbuckets = nb;
		if ((s->buckets = calloc(nb, sizeof(*s->buckets))) == NULL)
			fatalx("ocsp cache: out of memory");
	}
	return c;
}

static void
entry_free(struct entry *e)
{
	ocsp_blob_unref(e->blob);
	free(e);
}

/* Unlinks e from its bucket and the FIFO list; caller holds the lock. */
static void
shard_unlink(struct shard *s, struct entry *e)
{
	struct entry **pp;

	pp = &s->buckets[(e->hash >> 4) & (s->nbuckets - 1)];
	while (*pp != NULL && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp == e)
		*pp = e->hnext;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	s->count--;
	s->bytes -= e->cost;
}

void
ocsp_cache_free(struct ocsp_cache *c)
{
	size_t i;
	struct entry *e, *next;

	if (c == NULL)
		return;
	for (i = 0; i < NSHARDS; i++) {
		for (e = c->shards[i].head; e != NULL; e = next) {
			next = e->next;
			entry_free(e);
		}
		free(c->shards[i].buckets);
		pthread_mutex_destroy(&c->shards[i].mu);
	}
	sodium_memzero(c->key, sizeof(c->key));
	free(c);
}

uint64_t
ocsp_cache_hash(struct ocsp_cache *c, const uint8_t *p, size_t len)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, p, len, c->key);
	memcpy(&h, out, sizeof(h));
	return h;
}

static struct entry *
shard_find(struct shard *s, uint64_t hash, const uint8_t *key,
    size_t key_len)
{
	struct entry *e;

	for (e = s->buckets[(hash >> 4) & (s->nbuckets - 1)]; e != NULL;
	    e = e->hnext)
		if (e->hash == hash && e->key_len == key_len &&
		    memcmp(e->key, key, key_len) == 0)
			return e;
	return NULL;
}

struct ocsp_blob *
ocsp_cache_get(struct ocsp_cache *c, uint64_t hash, const uint8_t *key,
    size_t key_len, int64_t now)
{
	struct shard *s = &c->shards[hash % NSHARDS];
	struct ocsp_blob *b = NULL;
	struct entry *e;
	int64_t refresh;

	pthread_mutex_lock(&s->mu);
	if ((e = shard_find(s, hash, key, key_len)) != NULL) {
		refresh = e->blob->this_update +
		    (e->blob->next_update - e->blob->this_update) / 2;
		/* A clock that jumped either way, or a signer that expired
		 * since: sign afresh (or answer tryLater) rather than send
		 * an answer no client can verify. */
		if (now < refresh && now >= e->blob->this_update - 60 &&
		    now >= e->blob->signer_not_before &&
		    now <= e->blob->signer_not_after) {
			b = e->blob;
			ocsp_blob_ref(b);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return b;
}

/* Evicts oldest entries until one more entry of cost fits. */
static void
shard_make_room(struct ocsp_cache *c, struct shard *s, size_t cost)
{
	struct entry *e;

	while (s->head != NULL && (s->count + 1 > c->max_entries ||
	    s->bytes + cost > c->max_bytes)) {
		e = s->head;
		shard_unlink(s, e);
		entry_free(e);
	}
}

int
ocsp_cache_put(struct ocsp_cache *c, uint64_t hash, const uint8_t *key,
    size_t key_len, struct ocsp_blob *blob,
    const uint8_t (*serials)[OCSP_SERIAL_LEN], size_t num_serials,
    atomic_uint_fast64_t *gen, uint64_t gen0)
{
	struct shard *s = &c->shards[hash % NSHARDS];
	struct entry *e, *old;
	size_t cost, i;
	int rc = 0;

	cost = sizeof(*e) + key_len + num_serials * OCSP_SERIAL_LEN +
	    blob->len;
	if (cost > c->max_bytes)
		return 0;
	if ((e = calloc(1, sizeof(*e) + key_len +
	    num_serials * OCSP_SERIAL_LEN)) == NULL)
		return 0;
	e->hash = hash;
	e->key_len = key_len;
	e->cost = cost;
	e->serials = (uint8_t (*)[OCSP_SERIAL_LEN])(void *)(e + 1);
	e->key = (uint8_t *)(e + 1) + num_serials * OCSP_SERIAL_LEN;
	for (i = 0; i < num_serials; i++)
		memcpy(e->serials[i], serials[i], OCSP_SERIAL_LEN);
	e->num_serials = num_serials;
	memcpy(e->key, key, key_len);
	e->blob = blob;
	ocsp_blob_ref(blob);

	pthread_mutex_lock(&s->mu);
	if (atomic_load(gen) != gen0) {
		/* a status changed since our read: our answer may be stale */
		pthread_mutex_unlock(&s->mu);
		entry_free(e);
		goto out;
	}
	if ((old = shard_find(s, hash, key, key_len)) != NULL) {
		shard_unlink(s, old);
		entry_free(old);
	}
	shard_make_room(c, s, cost);
	e->hnext = s->buckets[(hash >> 4) & (s->nbuckets - 1)];
	s->buckets[(hash >> 4) & (s->nbuckets - 1)] = e;
	e->prev = s->tail;
	if (s->tail != NULL)
		s->tail->next = e;
	else
		s->head = e;
	s->tail = e;
	s->count++;
	s->bytes += cost;
	pthread_mutex_unlock(&s->mu);
	rc = 1;
 out:
	return rc;
}

static int
entry_covers(const struct entry *e, const uint8_t *serial)
{
	size_t i;

	for (i = 0; i < e->num_serials; i++)
		if (memcmp(e->serials[i], serial, OCSP_SERIAL_LEN) == 0)
			return 1;
	return 0;
}

size_t
ocsp_cache_invalidate(struct ocsp_cache *c, const uint8_t *serial)
{
	struct entry *e, *next;
	size_t i, n = 0;

	for (i = 0; i < NSHARDS; i++) {
		struct shard *s = &c->shards[i];

		pthread_mutex_lock(&s->mu);
		for (e = s->head; e != NULL; e = next) {
			next = e->next;
			if (serial == NULL || entry_covers(e, serial)) {
				shard_unlink(s, e);
				entry_free(e);
				n++;
			}
		}
		pthread_mutex_unlock(&s->mu);
	}
	return n;
}

size_t
ocsp_cache_count(struct ocsp_cache *c)
{
	size_t i, n = 0;

	for (i = 0; i < NSHARDS; i++) {
		pthread_mutex_lock(&c->shards[i].mu);
		n += c->shards[i].count;
		pthread_mutex_unlock(&c->shards[i].mu);
	}
	return n;
}

size_t
ocsp_cache_bytes(struct ocsp_cache *c)
{
	size_t i, n = 0;

	for (i = 0; i < NSHARDS; i++) {
		pthread_mutex_lock(&c->shards[i].mu);
		n += c->shards[i].bytes;
		pthread_mutex_unlock(&c->shards[i].mu);
	}
	return n;
}
