/*
 * crl_builder.c - incremental CRL state and the RFC 5280 CRL encoders.
 *
 * The DER of every current CRL entry lives in one growing buffer (append
 * order); an open-addressing table maps serial -> (offset, length, status).
 * A dead entry (released hold, hold turned into revocation) gets its first
 * byte overwritten with 0x00 so compaction can walk the buffer; the buffer
 * is compacted before each full build and when dead bytes pile up.  A full
 * CRL is the TBS header, one memcpy of the buffer, the extensions, and one
 * signature.  Events since the base of the delta CRLs are kept in a log
 * that drives them; the service chooses the base (the oldest published
 * full CRL a relying party may still hold, see crl_service.c).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/bytes.h"
#include "common/log.h"
#include "common/sigmd.h"
#include "store/store.h"
#include "crl/crl.h"
#include "crl/crl_int.h"

#define ENTRY_MAX	128	/* an encoded entry always fits short form */
#define OUTER_RESERVE	6	/* tag + up to 5 length bytes */
#define TAB_MIN		1024
#define COMPACT_MIN	(64 * 1024)

/*
 * An index slot: only listed serials are indexed (absent means GOOD); the
 * serial itself is read back from the entry's DER, so a slot is 8 bytes.
 */
struct ent {
	uint32_t	off;		/* ENT_EMPTY: free slot */
	uint32_t	tag;		/* low 32 bits of the serial's hash */
};
#define ENT_EMPTY	UINT32_MAX
#define MAX_CHUNKS	((size_t)UINT32_MAX >> CRL_CHUNK_SHIFT)

struct logrec {
	uint64_t	seq;
	int64_t		when;
	uint8_t		serial[STORE_SERIAL_LEN];
	uint8_t		status;
};

struct crl_builder {
	X509		*ca;
	EVP_PKEY	*key;		/* public only with rsign */
	struct rsign	 rsign;		/* .sign NULL: sign with key here */
	const EVP_MD	*md;		/* NULL for Ed25519 */
	uint8_t		 alg[16];	/* AlgorithmIdentifier DER */
	size_t		 alg_len;
	size_t		 sig_max;
	uint8_t		*issuer;	/* Name DER */
	size_t		 issuer_len;
	uint8_t		 aki[64];	/* the whole AKI Extension DER */
	size_t		 aki_len;
	uint8_t		*fresh;		/* freshestCRL Extension DER or NULL */
	size_t		 fresh_len;
	uint8_t		 expired[32];	/* expiredCertsOnCRL Extension DER */
	size_t		 expired_len;

	struct crl_chunk **chunks;	/* entries; NULL: emptied chunk */
	uint32_t	*cdead;		/* dead bytes per chunk */
	size_t		 num_chunks, chunks_cap;
	size_t		 ents_len, dead;	/* bytes in all chunks, dead */
	struct ent	*tab;
	size_t		 tab_cap, count;	/* count = listed = indexed */

	struct logrec	*log;		/* events after base_seq */
	size_t		 log_len, log_cap;
	uint64_t	 last_seq, base_seq, base_number;
	int		 have_base;
	int		 logging;	/* a full TBS was made: log events */
};

static const uint8_t alg_ecdsa_sha256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
static const uint8_t alg_ecdsa_sha384[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03 };
static const uint8_t alg_rsa_sha256[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a,
    0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00 };
static const uint8_t alg_ed25519[] = { 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65,
    0x70 };
static const uint8_t oid_reason[] = { 0x06, 0x03, 0x55, 0x1d, 0x15 };
static const uint8_t oid_invalidity[] = { 0x06, 0x03, 0x55, 0x1d, 0x18 };
static const uint8_t oid_crlnumber[] = { 0x06, 0x03, 0x55, 0x1d, 0x14 };
static const uint8_t oid_delta[] = { 0x06, 0x03, 0x55, 0x1d, 0x1b };
static const uint8_t oid_aki[] = { 0x06, 0x03, 0x55, 0x1d, 0x23 };
static const uint8_t oid_freshest[] = { 0x06, 0x03, 0x55, 0x1d, 0x2e };
static const uint8_t oid_expired[] = { 0x06, 0x03, 0x55, 0x1d, 0x3c };

/* ---- DER writing ---- */

static size_t
der_hdr_len(size_t len)
{
	size_t n = 2;

	if (len < 128)
		return n;
	for (; len > 0; len >>= 8)
		n++;
	return n;
}

/* Writes tag and definite length at p; returns the bytes written. */
static size_t
der_hdr_put(uint8_t *p, uint8_t tag, size_t len)
{
	size_t n, i, v;

	p[0] = tag;
	if (len < 128) {
		p[1] = (uint8_t)len;
		return 2;
	}
	for (n = 0, v = len; v > 0; v >>= 8)
		n++;
	p[1] = (uint8_t)(0x80 | n);
	for (i = 0; i < n; i++)
		p[2 + i] = (uint8_t)(len >> (8 * (n - 1 - i)));
	return 2 + n;
}

static void
wb_hdr(struct wb *w, uint8_t tag, size_t len)
{
	uint8_t h[OUTER_RESERVE + 4];

	wb_put(w, h, der_hdr_put(h, tag, len));
}

/* Appends tag + the content of inner. */
static void
wb_wrap(struct wb *w, uint8_t tag, const struct wb *inner)
{
	if (!wb_ok(inner)) {
		w->failed = 1;
		return;
	}
	wb_hdr(w, tag, inner->len);
	wb_put(w, inner->data, inner->len);
}

/* INTEGER content of an unsigned big-endian number; returns its length. */
static size_t
der_uint_content(uint8_t *out, const uint8_t *be, size_t len)
{
	size_t n = 0;

	while (len > 1 && be[0] == 0) {
		be++;
		len--;
	}
	if (be[0] & 0x80)
		out[n++] = 0;
	memcpy(out + n, be, len);
	return n + len;
}

static void
wb_uint64(struct wb *w, uint64_t v)
{
	uint8_t be[8], c[9];
	size_t n;

	be64_put(be, v);
	n = der_uint_content(c, be, sizeof(be));
	wb_hdr(w, 0x02, n);
	wb_put(w, c, n);
}

/*
 * RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime otherwise (and
 * always when gen is set, as for invalidityDate, 5.3.2).  Returns the
 * bytes written at p (at most 17), 0 for an unrepresentable time.
 */
static size_t
der_time_put(uint8_t *p, int64_t t, int gen)
{
	struct tm tm;
	time_t tt = (time_t)t;
	char s[32];
	int n;

	if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 0)
		return 0;
	if (!gen && tm.tm_year + 1900 >= 1950 && tm.tm_year + 1900 <= 2049)
		n = snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ",
		    tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
	else {
		gen = 1;
		n = snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
	}
	if (n <= 0 || (size_t)n >= sizeof(s))
		return 0;
	p[0] = gen ? 0x18 : 0x17;
	p[1] = (uint8_t)n;
	memcpy(p + 2, s, (size_t)n);
	return 2 + (size_t)n;
}

/*
 * Reads back a time der_time_put wrote (our own bytes, not a peer's):
 * returns the bytes it spans, 0 if p does not hold one.
 */
static size_t
der_time_get(const uint8_t *p, size_t avail, int64_t *out)
{
	struct tm tm;
	const uint8_t *d;
	size_t n, i, y;
	int v[7];

	if (avail < 2 || (p[0] != 0x17 && p[0] != 0x18))
		return 0;
	n = p[1];
	y = p[0] == 0x17 ? 2 : 4;
	if (n != y + 11 || avail < 2 + n || p[2 + n - 1] != 'Z')
		return 0;
	d = p + 2;
	for (i = 0; i < n - 1; i++)
		if (d[i] < '0' || d[i] > '9')
			return 0;
	v[0] = 0;
	for (i = 0; i < y; i++)
		v[0] = v[0] * 10 + (d[i] - '0');
	for (i = 0; i < 5; i++)
		v[i + 1] = (d[y + 2 * i] - '0') * 10 + (d[y + 2 * i + 1] - '0');
	if (y == 2)
		v[0] += v[0] >= 50 ? 1900 : 2000;	/* RFC 5280 4.1.2.5.1 */
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	*out = (int64_t)timegm(&tm);
	return 2 + n;
}

/*
 * The revocationDate and invalidityDate (0: none) of an entry we
 * encoded.  Returns 1, or 0 if the bytes are not what encode_entry makes.
 */
static int
entry_times(const uint8_t *e, int64_t *out_when, int64_t *out_inv)
{
	static const uint8_t inv_hdr[] = { 0x06, 0x03, 0x55, 0x1d, 0x18,
	    0x04 };
	size_t len = 2 + (size_t)e[1], p, n, end;

	*out_inv = 0;
	p = 4 + (size_t)e[3];			/* past the serial */
	if (p > len || (n = der_time_get(e + p, len - p, out_when)) == 0)
		return 0;
	p += n;
	if (p == len)
		return 1;
	if (e[p] != 0x30 || p + 2 + e[p + 1] != len)
		return 0;
	for (p += 2; p + 2 <= len; p = end) {	/* each Extension */
		end = p + 2 + e[p + 1];
		if (e[p] != 0x30 || end > len)
			return 0;
		if (end - p > 2 + sizeof(inv_hdr) + 1 &&
		    memcmp(e + p + 2, inv_hdr, sizeof(inv_hdr)) == 0 &&
		    der_time_get(e + p + 2 + sizeof(inv_hdr) + 1,
		    end - (p + 2 + sizeof(inv_hdr) + 1), out_inv) == 0)
			return 0;
	}
	return p == len;
}

/*
 * One revokedCertificates element (RFC 5280 5.1.2.6, 5.3): serial,
 * revocationDate, reasonCode unless unspecified, invalidityDate when set.
 * Returns its length (< 128), 0 on a bad time.
 */
static size_t
encode_entry(uint8_t out[ENTRY_MAX], const uint8_t serial[STORE_SERIAL_LEN],
    int64_t when, uint8_t reason, int64_t invalidity)
{
	uint8_t c[ENTRY_MAX], ext[64], t[20];
	size_t n = 0, en = 0, tn, in;

	in = der_uint_content(c + 2, serial, STORE_SERIAL_LEN);
	c[0] = 0x02;
	c[1] = (uint8_t)in;
	n = 2 + in;
	if ((tn = der_time_put(c + n, when, 0)) == 0)
		return 0;
	n += tn;
	if (reason != REASON_UNSPECIFIED) {
		ext[en++] = 0x30;
		ext[en++] = 10;
		memcpy(ext + en, oid_reason, sizeof(oid_reason));
		en += sizeof(oid_reason);
		ext[en++] = 0x04;
		ext[en++] = 3;
		ext[en++] = 0x0a;
		ext[en++] = 1;
		ext[en++] = reason;
	}
	if (invalidity != 0) {
		if ((tn = der_time_put(t, invalidity, 1)) == 0)
			return 0;
		ext[en++] = 0x30;
		ext[en++] = (uint8_t)(sizeof(oid_invalidity) + 2 + tn);
		memcpy(ext + en, oid_invalidity, sizeof(oid_invalidity));
		en += sizeof(oid_invalidity);
		ext[en++] = 0x04;
		ext[en++] = (uint8_t)tn;
		memcpy(ext + en, t, tn);
		en += tn;
	}
	if (en > 0) {
		c[n++] = 0x30;
		c[n++] = (uint8_t)en;
		memcpy(c + n, ext, en);
		n += en;
	}
	out[0] = 0x30;
	out[1] = (uint8_t)n;
	memcpy(out + 2, c, n);
	return n + 2;
}

/* Reads the serial back out of an entry we encoded. */
static void
entry_serial(const uint8_t *e, uint8_t serial[STORE_SERIAL_LEN])
{
	size_t n = e[3];
	const uint8_t *p = e + 4;

	if (n > STORE_SERIAL_LEN) {
		p += n - STORE_SERIAL_LEN;
		n = STORE_SERIAL_LEN;
	}
	memset(serial, 0, STORE_SERIAL_LEN);
	memcpy(serial + STORE_SERIAL_LEN - n, p, n);
}

/* ---- entry chunks ---- */

static uint8_t *
ent_ptr(const struct crl_builder *b, uint32_t off)
{
	return b->chunks[off >> CRL_CHUNK_SHIFT]->data +
	    (off & (CRL_CHUNK_SIZE - 1));
}

static struct crl_chunk *
chunk_new(void)
{
	struct crl_chunk *c;

	if ((c = malloc(sizeof(*c) + CRL_CHUNK_SIZE)) == NULL)
		return NULL;
	c->refs = 1;
	c->len = 0;
	return c;
}

void
crl_chunk_unref(struct crl_chunk *c)
{
	if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(c);
}

/* Makes chunk ci private to the builder (copy on write). */
static int
chunk_own(struct crl_builder *b, size_t ci)
{
	struct crl_chunk *c = b->chunks[ci], *n;

	/* new references are only taken under the same lock as this */
	if (__atomic_load_n(&c->refs, __ATOMIC_ACQUIRE) == 1)
		return 1;
	if ((n = chunk_new()) == NULL)
		return 0;
	memcpy(n->data, c->data, c->len);
	n->len = c->len;
	b->chunks[ci] = n;
	crl_chunk_unref(c);
	return 1;
}

/* ---- serial table ---- */

static uint64_t
ser_hash(const uint8_t s[STORE_SERIAL_LEN])
{
	uint64_t h;

	h = be64_get(s) * 0x9e3779b97f4a7c15ULL ^ be64_get(s + 8);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 29;
	return h;
}

static size_t
entry_len(const uint8_t *e)
{
	return 2 + (size_t)e[1];
}

/* 1 if an entry we encoded carries reasonCode certificateHold. */
static int
entry_is_hold(const uint8_t *e)
{
	static const uint8_t hold[] = { 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d,
	    0x15, 0x04, 0x03, 0x0a, 0x01, REASON_CERTIFICATE_HOLD };
	size_t len = entry_len(e), p;

	p = 2 + 2 + (size_t)e[3];		/* past the serial */
	p += 2 + (size_t)e[p + 1];		/* past revocationDate */
	return p + 2 + sizeof(hold) <= len &&
	    memcmp(e + p + 2, hold, sizeof(hold)) == 0;
}

/*
 * Finds serial s: returns 1 with *out_i its slot, or 0 with *out_i the
 * free slot where it would go.
 */
static int
tab_lookup(const struct crl_builder *b, const uint8_t s[STORE_SERIAL_LEN],
    size_t *out_i)
{
	uint64_t h = ser_hash(s);
	uint32_t tag = (uint32_t)h;
	uint8_t other[STORE_SERIAL_LEN];
	size_t i = (size_t)tag & (b->tab_cap - 1);

	for (;; i = (i + 1) & (b->tab_cap - 1)) {
		if (b->tab[i].off == ENT_EMPTY)
			break;
		if (b->tab[i].tag != tag)
			continue;
		entry_serial(ent_ptr(b, b->tab[i].off), other);
		if (memcmp(other, s, STORE_SERIAL_LEN) == 0) {
			*out_i = i;
			return 1;
		}
	}
	*out_i = i;
	return 0;
}

static int
tab_grow(struct crl_builder *b)
{
	struct ent *nt;
	size_t cap = b->tab_cap * 2, i, j;

	if ((nt = reallocarray(NULL, cap, sizeof(*nt))) == NULL)
		return 0;
	memset(nt, 0xff, cap * sizeof(*nt));
	for (i = 0; i < b->tab_cap; i++) {
		if (b->tab[i].off == ENT_EMPTY)
			continue;
		for (j = b->tab[i].tag & (cap - 1); nt[j].off != ENT_EMPTY;
		    j = (j + 1) & (cap - 1))
			;
		nt[j] = b->tab[i];
	}
	free(b->tab);
	b->tab = nt;
	b->tab_cap = cap;
	return 1;
}

/* Indexes the entry at off (not indexed yet); 1 or 0 (no memory). */
static int
tab_insert(struct crl_builder *b, const uint8_t s[STORE_SERIAL_LEN],
    uint32_t off)
{
	size_t i;

	if ((b->count + 1) * 4 > b->tab_cap * 3 && !tab_grow(b))
		return 0;
	(void)tab_lookup(b, s, &i);
	b->tab[i].off = off;
	b->tab[i].tag = (uint32_t)ser_hash(s);
	return 1;
}

/* Linear-probing delete with backward shift (Knuth 6.4 algorithm R). */
static void
tab_delete(struct crl_builder *b, size_t i)
{
	size_t j = i, k, mask = b->tab_cap - 1;

	for (;;) {
		j = (j + 1) & mask;
		if (b->tab[j].off == ENT_EMPTY)
			break;
		k = b->tab[j].tag & mask;
		if ((j > i && (k <= i || k > j)) ||
		    (j < i && (k <= i && k > j))) {
			b->tab[i] = b->tab[j];
			i = j;
		}
	}
	b->tab[i].off = ENT_EMPTY;
}

/* The slot of the listed entry at off (by offset: no dereference). */
static size_t
tab_slot_of(const struct crl_builder *b, const uint8_t s[STORE_SERIAL_LEN],
    uint32_t off)
{
	size_t i = (size_t)ser_hash(s) & (b->tab_cap - 1);

	while (b->tab[i].off != off) {
		if (b->tab[i].off == ENT_EMPTY)
			fatalx("crl: entry without index");
		i = (i + 1) & (b->tab_cap - 1);
	}
	return i;
}

/*
 * Squeezes dead entries out of chunk ci (into a new chunk if a snapshot
 * shares it); live entries stay in their chunk.  Returns 1 or 0 (memory).
 */
static int
compact_chunk(struct crl_builder *b, size_t ci)
{
	struct crl_chunk *c = b->chunks[ci], *dst = c;
	uint8_t serial[STORE_SERIAL_LEN];
	size_t r = 0, w = 0, n, i;
	uint32_t base = (uint32_t)(ci << CRL_CHUNK_SHIFT);

	if (__atomic_load_n(&c->refs, __ATOMIC_ACQUIRE) != 1 &&
	    (dst = chunk_new()) == NULL)
		return 0;
	while (r < c->len) {
		n = entry_len(c->data + r);
		if (c->data[r] == 0x30) {
			entry_serial(c->data + r, serial);
			i = tab_slot_of(b, serial, base | (uint32_t)r);
			if (dst != c || w != r)
				memmove(dst->data + w, c->data + r, n);
			b->tab[i].off = base | (uint32_t)w;
			w += n;
		}
		r += n;
	}
	dst->len = (uint32_t)w;
	if (dst != c) {
		b->chunks[ci] = dst;
		crl_chunk_unref(c);
	}
	b->ents_len -= b->cdead[ci];
	b->dead -= b->cdead[ci];
	b->cdead[ci] = 0;
	if (w == 0 && ci + 1 != b->num_chunks) {
		crl_chunk_unref(dst);
		b->chunks[ci] = NULL;
	}
	return 1;
}

static int
compact(struct crl_builder *b)
{
	size_t ci;

	for (ci = 0; ci < b->num_chunks; ci++)
		if (b->cdead[ci] > 0 && !compact_chunk(b, ci))
			return 0;
	return 1;
}

/* ---- builder ---- */

static int
make_aki(struct crl_builder *b)
{
	const ASN1_OCTET_STRING *ski;
	uint8_t md[EVP_MAX_MD_SIZE];
	const uint8_t *id;
	unsigned int mdlen;
	size_t idlen, n = 0;

	if ((ski = X509_get0_subject_key_id(b->ca)) != NULL) {
		id = ASN1_STRING_get0_data(ski);
		idlen = (size_t)ASN1_STRING_length(ski);
	} else {
		/* RFC 5280 4.2.1.2 method 1 */
		if (!X509_pubkey_digest(b->ca, EVP_sha1(), md, &mdlen)) {
			log_ssl("crl: CA key identifier");
			return 0;
		}
		id = md;
		idlen = mdlen;
	}
	if (idlen == 0 || idlen > 32) {
		log_warnx("crl: CA subjectKeyIdentifier length %zu", idlen);
		return 0;
	}
	b->aki[n++] = 0x30;
	b->aki[n++] = (uint8_t)(sizeof(oid_aki) + 6 + idlen);
	memcpy(b->aki + n, oid_aki, sizeof(oid_aki));
	n += sizeof(oid_aki);
	b->aki[n++] = 0x04;
	b->aki[n++] = (uint8_t)(4 + idlen);
	b->aki[n++] = 0x30;
	b->aki[n++] = (uint8_t)(2 + idlen);
	b->aki[n++] = 0x80;		/* keyIdentifier [0] IMPLICIT */
	b->aki[n++] = (uint8_t)idlen;
	memcpy(b->aki + n, id, idlen);
	b->aki_len = n + idlen;
	return 1;
}

/* freshestCRL (RFC 5280 5.2.6): one DistributionPoint with a fullName URI. */
static int
make_freshest(struct crl_builder *b, const char *url)
{
	struct wb uri, gns, dpn, dp, dps, ext, oct;
	int rc = 0;

	wb_init(&uri); wb_init(&gns); wb_init(&dpn); wb_init(&dp);
	wb_init(&dps); wb_init(&ext); wb_init(&oct);
	wb_hdr(&uri, 0x86, strlen(url));	/* uniformResourceIdentifier */
	wb_str(&uri, url);
	wb_wrap(&gns, 0xa0, &uri);		/* fullName [0] */
	wb_wrap(&dpn, 0xa0, &gns);		/* distributionPoint [0] */
	wb_wrap(&dp, 0x30, &dpn);		/* DistributionPoint */
	wb_wrap(&dps, 0x30, &dp);		/* CRLDistributionPoints */
	wb_put(&oct, oid_freshest, sizeof(oid_freshest));
	wb_wrap(&oct, 0x04, &dps);
	wb_wrap(&ext, 0x30, &oct);
	if (!wb_ok(&ext))
		goto out;
	b->fresh = wb_steal(&ext, &b->fresh_len);
	rc = 1;
out:
	wb_cleanup(&uri); wb_cleanup(&gns); wb_cleanup(&dpn); wb_cleanup(&dp);
	wb_cleanup(&dps); wb_cleanup(&ext); wb_cleanup(&oct);
	return rc;
}

/*
 * expiredCertsOnCRL ::= GeneralizedTime: the CRL lists revoked
 * certificates that expired on or after that date.  mica never drops an
 * entry, so the date is the CA certificate's notBefore: every certificate
 * the CA has revoked.
 */
static int
make_expired(struct crl_builder *b)
{
	struct tm tm;
	uint8_t t[20];
	size_t tn, n = 0;

	if (ASN1_TIME_to_tm(X509_get0_notBefore(b->ca), &tm) != 1 ||
	    (tn = der_time_put(t, (int64_t)timegm(&tm), 1)) == 0) {
		log_ssl("crl: CA notBefore");
		return 0;
	}
	b->expired[n++] = 0x30;
	b->expired[n++] = (uint8_t)(sizeof(oid_expired) + 2 + tn);
	memcpy(b->expired + n, oid_expired, sizeof(oid_expired));
	n += sizeof(oid_expired);
	b->expired[n++] = 0x04;
	b->expired[n++] = (uint8_t)tn;
	memcpy(b->expired + n, t, tn);
	b->expired_len = n + tn;
	return 1;
}

static int
set_alg(struct crl_builder *b)
{
	int sz;

	if (EVP_PKEY_is_a(b->key, "ED25519")) {
		memcpy(b->alg, alg_ed25519, sizeof(alg_ed25519));
		b->alg_len = sizeof(alg_ed25519);
		b->md = NULL;
	} else if (EVP_PKEY_is_a(b->key, "EC") &&
	    sigmd_get(b->key) == EVP_sha384()) {
		memcpy(b->alg, alg_ecdsa_sha384, sizeof(alg_ecdsa_sha384));
		b->alg_len = sizeof(alg_ecdsa_sha384);
		b->md = sigmd_get(b->key);
	} else if (EVP_PKEY_is_a(b->key, "EC")) {
		memcpy(b->alg, alg_ecdsa_sha256, sizeof(alg_ecdsa_sha256));
		b->alg_len = sizeof(alg_ecdsa_sha256);
		b->md = sigmd_get(b->key);
	} else if (EVP_PKEY_is_a(b->key, "RSA")) {
		memcpy(b->alg, alg_rsa_sha256, sizeof(alg_rsa_sha256));
		b->alg_len = sizeof(alg_rsa_sha256);
		b->md = sigmd_get(b->key);
	} else {
		log_warnx("crl: unsupported CA key type %s",
		    EVP_PKEY_get0_type_name(b->key));
		return 0;
	}
	if ((sz = EVP_PKEY_get_size(b->key)) <= 0) {
		log_ssl("crl: CA key size");
		return 0;
	}
	b->sig_max = (size_t)sz;
	return 1;
}

struct crl_builder *
crl_builder_new(X509 *ca_cert, EVP_PKEY *ca_key, const char *freshest_url)
{
	struct crl_builder *b = NULL, *ret = NULL;
	unsigned char *p = NULL;
	int n;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		goto out;
	if (!X509_up_ref(ca_cert))
		goto out;
	b->ca = ca_cert;
	if (!EVP_PKEY_up_ref(ca_key))
		goto out;
	b->key = ca_key;
	/* public parts only: ca_key may be the certificate's public key
	 * when another process signs (crl_builder_set_rsign) */
	if (EVP_PKEY_eq(X509_get0_pubkey(ca_cert), ca_key) != 1) {
		log_ssl("crl: CA key does not match the CA certificate");
		goto out;
	}
	if (!set_alg(b) || !make_aki(b) || !make_expired(b))
		goto out;
	if ((n = i2d_X509_NAME(X509_get_subject_name(ca_cert), &p)) <= 0) {
		log_ssl("crl: CA subject");
		goto out;
	}
	b->issuer = p;
	b->issuer_len = (size_t)n;
	if (freshest_url != NULL && freshest_url[0] != '\0' &&
	    !make_freshest(b, freshest_url))
		goto out;
	b->tab_cap = TAB_MIN;
	if ((b->tab = reallocarray(NULL, b->tab_cap, sizeof(*b->tab))) ==
	    NULL)
		goto out;
	memset(b->tab, 0xff, b->tab_cap * sizeof(*b->tab));
	ret = b;
	b = NULL;
out:
	if (ret == NULL && b == NULL)
		log_warnx("crl: builder: out of memory");
	crl_builder_free(b);
	return ret;
}

void
crl_builder_free(struct crl_builder *b)
{
	size_t i;

	if (b == NULL)
		return;
	X509_free(b->ca);
	EVP_PKEY_free(b->key);
	OPENSSL_free(b->issuer);
	free(b->fresh);
	for (i = 0; i < b->num_chunks; i++)
		crl_chunk_unref(b->chunks[i]);
	free(b->chunks);
	free(b->cdead);
	free(b->tab);
	free(b->log);
	free(b);
}

size_t
crl_builder_count(const struct crl_builder *b)
{
	return b->count;
}

uint64_t
crl_builder_last_seq(const struct crl_builder *b)
{
	return b->last_seq;
}

uint64_t
crl_builder_base_number(const struct crl_builder *b)
{
	return b->have_base ? b->base_number : 0;
}

/* Appends an encoded entry; *out_off is where it went. */
static int
ents_append(struct crl_builder *b, const uint8_t *p, size_t n,
    uint32_t *out_off)
{
	struct crl_chunk *c = NULL, **nc;
	uint32_t *nd;
	size_t cap;

	if (b->num_chunks > 0)
		c = b->chunks[b->num_chunks - 1];
	if (c == NULL || c->len + n > CRL_CHUNK_SIZE) {
		if (b->num_chunks >= MAX_CHUNKS) {
			log_warnx("crl: entries over 4 GiB");
			return 0;
		}
		if (b->num_chunks == b->chunks_cap) {
			cap = b->chunks_cap ? b->chunks_cap * 2 : 16;
			if ((nc = reallocarray(b->chunks, cap,
			    sizeof(*nc))) == NULL)
				return 0;
			b->chunks = nc;
			if ((nd = reallocarray(b->cdead, cap,
			    sizeof(*nd))) == NULL)
				return 0;
			b->cdead = nd;
			b->chunks_cap = cap;
		}
		if ((c = chunk_new()) == NULL)
			return 0;
		b->chunks[b->num_chunks] = c;
		b->cdead[b->num_chunks] = 0;
		b->num_chunks++;
	}
	/* past the len any snapshot holds: no reader sees these bytes */
	memcpy(c->data + c->len, p, n);
	*out_off = (uint32_t)((b->num_chunks - 1) << CRL_CHUNK_SHIFT) | c->len;
	c->len += (uint32_t)n;
	b->ents_len += n;
	return 1;
}

static void
ents_unappend(struct crl_builder *b, size_t n)
{
	b->chunks[b->num_chunks - 1]->len -= (uint32_t)n;
	b->ents_len -= n;
}

static int
log_append(struct crl_builder *b, const struct rev_event *ev)
{
	struct logrec *nl;
	size_t cap;

	if (b->log_len == b->log_cap) {
		cap = b->log_cap ? b->log_cap * 2 : 64;
		if ((nl = reallocarray(b->log, cap, sizeof(*nl))) == NULL)
			return 0;
		b->log = nl;
		b->log_cap = cap;
	}
	nl = &b->log[b->log_len++];
	nl->seq = ev->seq;
	nl->when = ev->when;
	nl->status = ev->status;
	memcpy(nl->serial, ev->serial, STORE_SERIAL_LEN);
	return 1;
}

/*
 * A revocation of a revoked certificate changes its reason (a reason
 * raised to keyCompromise once a compromise is learned): the entry keeps
 * the first revocationDate (RFC 5280 5.1.2.6: the date of the revocation,
 * which did not move) and gains the event's invalidityDate, or keeps its
 * own.  Fills *when and *inv; 0 if the old entry does not decode.
 */
static int
reason_change_times(const uint8_t *old, const struct rev_event *ev,
    int64_t *when, int64_t *inv)
{
	int64_t ow, oi;

	if (!entry_times(old, &ow, &oi))
		return 0;
	*when = ow;
	*inv = ev->invalidity != 0 ? ev->invalidity : oi;
	return 1;
}

int
crl_builder_apply(struct crl_builder *b, const struct rev_event *ev)
{
	uint8_t e[ENTRY_MAX];
	size_t n = 0, i;
	uint32_t old, off = 0;
	char hex[SERIAL_HEX_LEN];
	uint8_t reason, cur, *p;
	int64_t when = ev->when, inv = ev->invalidity;
	int found, logged;

	if (ev->status != CERT_GOOD && ev->status != CERT_HOLD &&
	    ev->status != CERT_REVOKED) {
		log_warnx("crl: event seq=%llu: bad status %u",
		    (unsigned long long)ev->seq, ev->status);
		return 0;
	}
	found = tab_lookup(b, ev->serial, &i);
	cur = !found ? CERT_GOOD : entry_is_hold(ent_ptr(b, b->tab[i].off)) ?
	    CERT_HOLD : CERT_REVOKED;
	if (cur == CERT_REVOKED && ev->status == CERT_REVOKED &&
	    !reason_change_times(ent_ptr(b, b->tab[i].off), ev, &when,
	    &inv)) {
		log_warnx("crl: event seq=%llu: entry does not decode",
		    (unsigned long long)ev->seq);
		return 0;
	}
	reason = ev->status == CERT_HOLD ? REASON_CERTIFICATE_HOLD :
	    ev->reason;
	if (ev->status != CERT_GOOD &&
	    (n = encode_entry(e, ev->serial, when, reason, inv)) == 0) {
		log_warnx("crl: event seq=%llu: bad time",
		    (unsigned long long)ev->seq);
		return 0;
	}
	if (!((cur == CERT_GOOD && ev->status != CERT_GOOD) ||
	    (cur == CERT_HOLD && ev->status != CERT_HOLD) ||
	    (cur == CERT_REVOKED && ev->status == CERT_REVOKED))) {
		serial_hex(hex, ev->serial);
		log_warnx("crl: event seq=%llu serial=%s: unexpected change "
		    "%u -> %u, applied anyway", (unsigned long long)ev->seq,
		    hex, cur, ev->status);
	}
	/* events after the base drive the delta CRLs */
	logged = b->logging && (!b->have_base || ev->seq > b->base_seq);
	/* take all memory first, so a failure changes nothing */
	if (n > 0 && !ents_append(b, e, n, &off))
		goto oom;
	if ((logged && !log_append(b, ev)) ||
	    (found && !chunk_own(b, b->tab[i].off >> CRL_CHUNK_SHIFT)) ||
	    (!found && n > 0 && !tab_insert(b, ev->serial, off))) {
		if (n > 0)
			ents_unappend(b, n);
		if (logged && b->log_len > 0 &&
		    b->log[b->log_len - 1].seq == ev->seq)
			b->log_len--;
		goto oom;
	}
	if (found) {
		old = b->tab[i].off;
		p = ent_ptr(b, old);
		b->cdead[old >> CRL_CHUNK_SHIFT] += (uint32_t)entry_len(p);
		b->dead += entry_len(p);
		p[0] = 0x00;		/* dead */
		if (n > 0)
			b->tab[i].off = off;
		else {
			tab_delete(b, i);
			b->count--;
		}
	} else if (n > 0)
		b->count++;
	b->last_seq = ev->seq;
	if (b->dead > COMPACT_MIN && b->dead > b->ents_len / 4)
		(void)compact(b);	/* on failure: again next time */
	return 1;
oom:
	log_warnx("crl: out of memory");
	return 0;
}

/* ---- encoders ---- */

/* Extension { oid, critical?, OCTET STRING { INTEGER v } }. */
static void
wb_ext_uint(struct wb *w, const uint8_t *oid, size_t oid_len, int critical,
    uint64_t v)
{
	struct wb val, ext;

	wb_init(&val);
	wb_init(&ext);
	wb_uint64(&val, v);
	wb_put(&ext, oid, oid_len);
	if (critical)
		wb_put(&ext, "\x01\x01\xff", 3);
	wb_wrap(&ext, 0x04, &val);
	wb_wrap(w, 0x30, &ext);
	wb_cleanup(&val);
	wb_cleanup(&ext);
}

/*
 * crlExtensions [0] EXPLICIT: AKI, cRLNumber, then deltaCRLIndicator
 * (critical, RFC 5280 5.2.4) for a delta or freshestCRL for a full CRL,
 * then expiredCertsOnCRL (ITU-T X.509, OID 2.5.29.60, not critical): mica
 * keeps the entries of expired certificates (README, "Expired
 * certificates stay on the CRL").
 */
static int
make_exts(const struct crl_builder *b, struct wb *out, uint64_t number,
    int delta, uint64_t base)
{
	struct wb list, seq;
	int rc;

	wb_init(&list);
	wb_init(&seq);
	wb_put(&list, b->aki, b->aki_len);
	wb_ext_uint(&list, oid_crlnumber, sizeof(oid_crlnumber), 0, number);
	if (delta)
		wb_ext_uint(&list, oid_delta, sizeof(oid_delta), 1, base);
	else if (b->fresh != NULL)
		wb_put(&list, b->fresh, b->fresh_len);
	wb_put(&list, b->expired, b->expired_len);
	wb_wrap(&seq, 0x30, &list);
	wb_wrap(out, 0xa0, &seq);
	rc = wb_ok(out);
	wb_cleanup(&list);
	wb_cleanup(&seq);
	return rc;
}

/*
 * TBSCertList (RFC 5280 5.1): version v2, signature, issuer, thisUpdate,
 * nextUpdate, revokedCertificates (absent when empty, 5.1.2.6),
 * crlExtensions.  The entries are either inline (a delta) or the
 * builder's chunks (a full CRL), referenced, not copied.  Leaves room for
 * the outer header before and the signature after.
 */
static int
make_tbs(const struct crl_builder *b, struct crl_tbs *t, const uint8_t *ents,
    size_t ents_len, int chunked, int64_t this_update, int64_t next_update,
    const struct wb *exts)
{
	struct wb head;
	uint8_t tm[20];
	size_t n, rc_len, content, sigpart, reserve, p, ci;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	wb_init(&head);
	wb_put(&head, "\x02\x01\x01", 3);
	wb_put(&head, b->alg, b->alg_len);
	wb_put(&head, b->issuer, b->issuer_len);
	if ((n = der_time_put(tm, this_update, 0)) == 0)
		goto bad_time;
	wb_put(&head, tm, n);
	if ((n = der_time_put(tm, next_update, 0)) == 0)
		goto bad_time;
	wb_put(&head, tm, n);
	if (!wb_ok(&head))
		goto oom;
	if (chunked)
		ents_len = b->ents_len;
	rc_len = ents_len > 0 ? der_hdr_len(ents_len) + ents_len : 0;
	content = head.len + rc_len + exts->len;
	t->tbs_len = der_hdr_len(content) + content;
	sigpart = b->alg_len + der_hdr_len(b->sig_max + 1) + 1 + b->sig_max;
	reserve = der_hdr_len(t->tbs_len + sigpart);

	t->tail_cap = exts->len + sigpart;
	if ((t->tail = malloc(t->tail_cap)) == NULL)
		goto oom;
	memcpy(t->tail, exts->data, exts->len);
	t->tail_len = t->exts_len = exts->len;
	if ((t->head = malloc(reserve + OUTER_RESERVE + head.len +
	    OUTER_RESERVE + (chunked ? 0 : ents_len))) == NULL)
		goto oom;
	t->head_off = p = reserve;
	p += der_hdr_put(t->head + p, 0x30, content);
	memcpy(t->head + p, head.data, head.len);
	p += head.len;
	if (ents_len > 0)
		p += der_hdr_put(t->head + p, 0x30, ents_len);
	if (!chunked && ents_len > 0) {
		memcpy(t->head + p, ents, ents_len);
		p += ents_len;
	}
	t->head_len = p;
	if (chunked && b->num_chunks > 0) {
		if ((t->chunks = reallocarray(NULL, b->num_chunks,
		    sizeof(*t->chunks))) == NULL ||
		    (t->chunk_len = reallocarray(NULL, b->num_chunks,
		    sizeof(*t->chunk_len))) == NULL)
			goto oom;
		for (ci = 0; ci < b->num_chunks; ci++) {
			if (b->chunks[ci] == NULL || b->chunks[ci]->len == 0)
				continue;
			__atomic_add_fetch(&b->chunks[ci]->refs, 1,
			    __ATOMIC_ACQ_REL);
			t->chunks[t->num_chunks] = b->chunks[ci];
			t->chunk_len[t->num_chunks++] = b->chunks[ci]->len;
		}
	}
	rc = 1;
	goto out;
bad_time:
	log_warnx("crl: thisUpdate/nextUpdate out of range");
	goto out;
oom:
	log_warnx("crl: out of memory");
out:
	wb_cleanup(&head);
	return rc;
}

void
crl_tbs_cleanup(struct crl_tbs *t)
{
	size_t i;

	for (i = 0; i < t->num_chunks; i++)
		crl_chunk_unref(t->chunks[i]);
	free(t->chunks);
	free(t->chunk_len);
	free(t->head);
	free(t->tail);
	memset(t, 0, sizeof(*t));
}

/* The TBS pieces (before signing) or the DER pieces (after). */
static int
pieces(const struct crl_tbs *t, int der, crl_piece_fn fn, void *arg)
{
	size_t i, off = der ? t->der_off : t->head_off;

	if (!fn(t->head + off, t->head_len - off, arg))
		return 0;
	for (i = 0; i < t->num_chunks; i++)
		if (!fn(t->chunks[i]->data, t->chunk_len[i], arg))
			return 0;
	return fn(t->tail, der ? t->tail_len : t->exts_len, arg);
}

int
crl_tbs_pieces(const struct crl_tbs *t, crl_piece_fn fn, void *arg)
{
	return pieces(t, 1, fn, arg);
}

struct flat {
	uint8_t	*p;
	size_t	 len;
};

static int
flat_piece(const uint8_t *p, size_t len, void *arg)
{
	struct flat *f = arg;

	memcpy(f->p + f->len, p, len);
	f->len += len;
	return 1;
}

uint8_t *
crl_tbs_flatten(const struct crl_tbs *t)
{
	struct flat f = { NULL, 0 };

	if ((f.p = malloc(t->der_len > 0 ? t->der_len : 1)) == NULL)
		return NULL;
	(void)pieces(t, 1, flat_piece, &f);
	return f.p;
}

static int
sign_piece(const uint8_t *p, size_t len, void *arg)
{
	return EVP_DigestSignUpdate(arg, p, len) == 1;
}

void
crl_builder_set_rsign(struct crl_builder *b, const struct rsign *rs)
{
	if (rs != NULL)
		b->rsign = *rs;
	else
		memset(&b->rsign, 0, sizeof(b->rsign));
}

int
crl_builder_sign(const struct crl_builder *b, struct crl_tbs *t)
{
	EVP_MD_CTX *ctx = NULL;
	struct flat f = { NULL, 0 };
	uint8_t *sig = NULL;
	size_t siglen = b->sig_max, p, body, h;
	int rc = 0;

	if ((sig = malloc(b->sig_max)) == NULL ||
	    (ctx = EVP_MD_CTX_new()) == NULL)
		goto oom;
	if (b->rsign.sign != NULL) {
		/* the signer process checks and signs the whole TBS */
		if ((f.p = malloc(t->tbs_len)) == NULL)
			goto oom;
		(void)pieces(t, 0, flat_piece, &f);
		if (!b->rsign.sign(b->rsign.arg, RSIGN_CRL, f.p, f.len, sig,
		    b->sig_max, &siglen)) {
			log_warnx("crl: the signer did not sign the CRL");
			goto out;
		}
	} else if (EVP_DigestSignInit(ctx, NULL, b->md, NULL, b->key) != 1)
		goto ssl;
	else if (b->md != NULL) {
		if (!pieces(t, 0, sign_piece, ctx) ||
		    EVP_DigestSignFinal(ctx, sig, &siglen) != 1)
			goto ssl;
	} else {
		/* EdDSA is one-shot: it needs the TBS in one piece */
		if ((f.p = malloc(t->tbs_len)) == NULL)
			goto oom;
		(void)pieces(t, 0, flat_piece, &f);
		if (EVP_DigestSign(ctx, sig, &siglen, f.p, f.len) != 1)
			goto ssl;
	}
	p = t->exts_len;
	memcpy(t->tail + p, b->alg, b->alg_len);
	p += b->alg_len;
	p += der_hdr_put(t->tail + p, 0x03, siglen + 1);
	t->tail[p++] = 0;		/* no unused bits */
	memcpy(t->tail + p, sig, siglen);
	t->tail_len = p + siglen;
	body = t->tbs_len + t->tail_len - t->exts_len;
	h = der_hdr_len(body);		/* <= the reserve made for the max */
	t->der_off = t->head_off - h;
	der_hdr_put(t->head + t->der_off, 0x30, body);
	t->der_len = h + body;
	rc = 1;
	goto out;
ssl:
	log_ssl("crl: signing");
	goto out;
oom:
	log_warnx("crl: out of memory");
out:
	EVP_MD_CTX_free(ctx);
	free(f.p);
	free(sig);
	return rc;
}

int
crl_builder_full_tbs(struct crl_builder *b, struct crl_tbs *t,
    uint64_t number, int64_t this_update, int64_t next_update)
{
	struct wb exts;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	wb_init(&exts);
	if (b->dead > 0 && !compact(b)) {
		log_warnx("crl: out of memory");
		goto out;
	}
	if (!make_exts(b, &exts, number, 0, 0)) {
		log_warnx("crl: out of memory");
		goto out;
	}
	if (!make_tbs(b, t, NULL, 0, 1, this_update, next_update, &exts))
		goto out;
	t->number = number;
	t->seq = b->last_seq;
	t->num_entries = b->count;
	b->logging = 1;
	rc = 1;
out:
	wb_cleanup(&exts);
	return rc;
}

static int
logrec_cmp(const void *a, const void *b)
{
	const struct logrec *x = a, *y = b;
	int c;

	if ((c = memcmp(x->serial, y->serial, STORE_SERIAL_LEN)) != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int
crl_builder_delta_tbs(struct crl_builder *b, struct crl_tbs *t,
    uint64_t number, int64_t this_update, int64_t next_update)
{
	struct logrec *l = NULL;
	struct wb ents, exts;
	const uint8_t *e;
	uint8_t enc[ENTRY_MAX];
	size_t i, j, k, n, count = 0;
	int rc = 0;

	wb_init(&ents);
	wb_init(&exts);
	if (!b->have_base) {
		log_warnx("crl: delta CRL without a base full CRL");
		goto out;
	}
	if (b->log_len > 0) {
		if ((l = reallocarray(NULL, b->log_len, sizeof(*l))) == NULL)
			goto oom;
		memcpy(l, b->log, b->log_len * sizeof(*l));
		qsort(l, b->log_len, sizeof(*l), logrec_cmp);
	}
	for (i = 0; i < b->log_len; i = j) {
		for (j = i + 1; j < b->log_len &&
		    memcmp(l[j].serial, l[i].serial, STORE_SERIAL_LEN) == 0; j++)
			;
		if (tab_lookup(b, l[i].serial, &k)) {
			e = ent_ptr(b, b->tab[k].off);
			wb_put(&ents, e, entry_len(e));
			count++;
		} else if (l[j - 1].status == CERT_GOOD) {
			/*
			 * Released from hold since the base (RFC 5280
			 * 5.3.1), also when the hold came after it: a
			 * full CRL between may list the hold.
			 */
			n = encode_entry(enc, l[i].serial, l[j - 1].when,
			    REASON_REMOVE_FROM_CRL, 0);
			if (n == 0)
				goto out;
			wb_put(&ents, enc, n);
			count++;
		}
	}
	if (!wb_ok(&ents) ||
	    !make_exts(b, &exts, number, 1, b->base_number))
		goto oom;
	if (!make_tbs(b, t, ents.data, ents.len, 0, this_update, next_update,
	    &exts))
		goto out;
	t->number = number;
	t->base_number = b->base_number;
	t->seq = b->last_seq;
	t->num_entries = count;
	rc = 1;
	goto out;
oom:
	log_warnx("crl: out of memory");
out:
	free(l);
	wb_cleanup(&ents);
	wb_cleanup(&exts);
	return rc;
}

void
crl_builder_set_base(struct crl_builder *b, uint64_t number, uint64_t seq)
{
	size_t i, w = 0;

	if (b->have_base && number <= b->base_number)
		return;
	for (i = 0; i < b->log_len; i++)
		if (b->log[i].seq > seq)
			b->log[w++] = b->log[i];
	b->log_len = w;
	b->base_number = number;
	b->base_seq = seq;
	b->have_base = 1;
	b->logging = 1;
}

/* Signs t and hands back a malloc'd contiguous DER. */
static int
finish(const struct crl_builder *b, struct crl_tbs *t, uint8_t **out_der,
    size_t *out_len)
{
	if (!crl_builder_sign(b, t))
		return 0;
	if ((*out_der = crl_tbs_flatten(t)) == NULL) {
		log_warnx("crl: out of memory");
		return 0;
	}
	*out_len = t->der_len;
	return 1;
}

int
crl_builder_full(struct crl_builder *b, uint8_t **out_der, size_t *out_len,
    uint64_t number, int64_t this_update, int64_t next_update)
{
	struct crl_tbs t;
	int rc = 0;

	memset(&t, 0, sizeof(t));
	if (!crl_builder_full_tbs(b, &t, number, this_update, next_update) ||
	    !finish(b, &t, out_der, out_len))
		goto out;
	crl_builder_set_base(b, number, t.seq);
	rc = 1;
out:
	crl_tbs_cleanup(&t);
	return rc;
}

int
crl_builder_delta(struct crl_builder *b, uint8_t **out_der, size_t *out_len,
    uint64_t number, int64_t this_update, int64_t next_update)
{
	struct crl_tbs t;
	int rc = 0;

	memset(&t, 0, sizeof(t));
	if (!crl_builder_delta_tbs(b, &t, number, this_update, next_update) ||
	    !finish(b, &t, out_der, out_len))
		goto out;
	rc = 1;
out:
	crl_tbs_cleanup(&t);
	return rc;
}
