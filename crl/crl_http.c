/*
 * crl_http.c - GET /crl... for relying parties (RFC 5280 section 4.2.1.13
 * distribution points; caching as RFC 5019 section 6 suggests for OCSP).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "crl/crl.h"
#include "crl/crl_int.h"
#include "ocsp/ocsp.h"

/*
 * Retry-After (RFC 9110 10.2.3) of a CRL asked for while the first build
 * of a start runs.  How long that build takes is not known (seconds at
 * 10^6 revocations); a refusal costs nothing (no lookup, no copy), so a
 * client asks again soon and gets the CRL within a second of it being
 * made.
 */
#define NOT_READY_RETRY_S	"1"

/* 1 if the If-None-Match list holds etag (or "*"). */
static int
etag_matches(const char *inm, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = inm;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p == '*')
			return 1;
		if (strncmp(p, etag, elen) == 0 &&
		    (p[elen] == '\0' || p[elen] == ',' || p[elen] == ' ' ||
		    p[elen] == '\t'))
			return 1;
		while (*p != '\0' && *p != ',')
			p++;
	}
	return 0;
}

static void
snap_cleanup(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	crl_snapshot_release(arg);
}

static int
add_ref(struct ocsp_http_req *req, const struct crl_snapshot *s,
    const uint8_t *p, size_t len)
{
	crl_snapshot_ref(s);
	if (ocsp_http_body_add_ref(req, p, len, snap_cleanup,
	    (void *)(uintptr_t)s))
		return 1;
	crl_snapshot_release(s);
	return 0;
}

struct piece_arg {
	struct ocsp_http_req		*req;
	const struct crl_snapshot	*s;
};

static int
der_piece(const uint8_t *p, size_t len, void *arg)
{
	struct piece_arg *a = arg;

	return add_ref(a->req, a->s, p, len);
}

/*
 * The CRL names: each DER name, and the same name + ".pem" for PEM.
 * /crl is what certificates carry (CRL DP), /crl/delta.crl what full CRLs
 * carry (freshestCRL); /crl/full.pem and /crl/delta.pem are kept from
 * earlier releases.
 */
static const struct {
	const char	*name;
	enum crl_kind	 kind;
} crl_names[] = {
	{ "/crl", CRL_FULL },
	{ "/crl/full.crl", CRL_FULL },
	{ "/crl/delta.crl", CRL_DELTA },
	{ "/crl/full", CRL_FULL },	/* + ".pem" only: the old names */
	{ "/crl/delta", CRL_DELTA },
};

/* 1 with *kind and *pem set if name is one of the CRL names, else 0. */
static int
crl_path(const char *name, enum crl_kind *kind, int *pem)
{
	size_t i, n, len = strlen(name);

	*pem = len > 4 && strcmp(name + len - 4, ".pem") == 0;
	n = *pem ? len - 4 : len;
	for (i = 0; i < sizeof(crl_names) / sizeof(crl_names[0]); i++) {
		if (strlen(crl_names[i].name) != n ||
		    strncmp(crl_names[i].name, name, n) != 0)
			continue;
		if (i >= 3 && !*pem)
			return 0;
		*kind = crl_names[i].kind;
		return 1;
	}
	return 0;
}

static int
send_simple(struct ocsp_http_req *req, int code, const char *reason)
{
	ocsp_http_send_error(req, code, reason);
	return code;
}

/* 500 after the CRL's own fields were added: without them, and not to
 * be kept by a cache for the CRL's lifetime. */
static int
send_failed(struct ocsp_http_req *req)
{
	ocsp_http_clear_headers(req);
	ocsp_http_add_header(req, "Cache-Control", "no-store");
	return send_simple(req, 500, "Internal Server Error");
}

int
crl_http_handle(struct crl_service *svc, struct ocsp_http_req *req,
    const char *path)
{
	const struct crl_snapshot *s = NULL;
	const char *inm, *body = NULL;
	struct piece_arg pa;
	char etag[64], date[64], cc[96], name[32];
	enum crl_kind kind;
	size_t plen, body_len = 0;
	int64_t age, now;
	int pem = 0, pending, code;
	enum ocsp_http_method cmd = ocsp_http_req_method(req);

	plen = strcspn(path, "?#");
	if (plen >= sizeof(name) || plen < 4)
		return send_simple(req, 404, "Not Found");
	memcpy(name, path, plen);
	name[plen] = '\0';
	if (!crl_path(name, &kind, &pem))
		return send_simple(req, 404, "Not Found");
	if (cmd != OCSP_HTTP_GET && cmd != OCSP_HTTP_HEAD) {
		ocsp_http_add_header(req, "Allow", "GET, HEAD");
		return send_simple(req, 405, "Method Not Allowed");
	}
	/* never wait here: OCSP requests on this thread would wait too */
	if ((s = crl_service_peek_nowait(svc, kind, &pending)) == NULL) {
		if (pending) {
			crl_service_count_not_ready(svc);
			ocsp_http_add_header(req, "Retry-After",
			    NOT_READY_RETRY_S);
		}
		ocsp_http_add_header(req, "Cache-Control", "no-store");
		return send_simple(req, 503, "Service Unavailable");
	}

	/* a representation per format: strong ETags must differ */
	snprintf(etag, sizeof(etag), "%.*s%s\"", (int)strlen(s->etag) - 1,
	    s->etag, pem ? "-pem" : "");
	ocsp_http_add_header(req, "ETag", etag);
	ocsp_http_date(date, sizeof(date), s->this_update);
	ocsp_http_add_header(req, "Last-Modified", date);
	/*
	 * Caches keep a full CRL until the next scheduled build (its
	 * nextUpdate may be later: relying parties may go on using it), a
	 * delta until its nextUpdate.
	 */
	ocsp_http_date(date, sizeof(date), s->fresh_until);
	ocsp_http_add_header(req, "Expires", date);
	now = (int64_t)time(NULL);
	age = s->fresh_until > now ? s->fresh_until - now : 0;
	snprintf(cc, sizeof(cc), "max-age=%" PRId64 ", public, no-transform, "
	    "must-revalidate", age);
	ocsp_http_add_header(req, "Cache-Control", cc);

	inm = ocsp_http_req_header(req, "If-None-Match");
	if (inm != NULL && etag_matches(inm, etag)) {
		ocsp_http_send(req, 304, "Not Modified");
		code = 304;
		goto out;
	}
	if (pem) {
		if ((body = crl_snapshot_pem(s, &body_len)) == NULL) {
			code = send_failed(req);
			goto out;
		}
	}
	ocsp_http_add_header(req, "Content-Type", pem ? "application/x-pem-file" :
	    "application/pkix-crl");
	/*
	 * No copy of a large CRL: the body references the snapshot's
	 * pieces, each holding a reference dropped once sent.  The
	 * listener drops the body of a HEAD reply itself.
	 */
	pa.req = req;
	pa.s = s;
	if ((pem && !add_ref(req, s, (const uint8_t *)body, body_len)) ||
	    (!pem && !crl_snapshot_pieces(s, der_piece, &pa))) {
		code = send_failed(req);
		goto out;
	}
	ocsp_http_send(req, 200, "OK");
	code = 200;
out:
	crl_snapshot_release(s);
	return code;
}
