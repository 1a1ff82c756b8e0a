/*
 * micad_main.c - the mica CA daemon: one libevent loop serving the admin
 * socket, the CA protocol (TLS 1.3) and, on its own threads, HTTP (OCSP,
 * CRLs, the CA certificate, metrics).  Runs in the foreground and logs to
 * stderr (systemd style).
 */
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "admin/admin.h"
#include "ca/ca.h"
#include "ca/listener.h"
#include "ca/micad.h"
#include "ca/reissue.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/workq.h"
#include "conf/conf.h"
#include "crl/crl.h"
#include "ocsp/ocsp.h"
#include "store/store.h"

static struct micad micad;
static struct ocsp_http *http;
static uint8_t *ca_der, *ca_pem;
static size_t ca_der_len, ca_pem_len;

static void
usage(FILE *f)
{
	fprintf(f,
"usage: micad [-c CONF] [-n] [-d]\n"
"\n"
"The mica CA daemon.  Runs in the foreground and logs to stderr.\n"
"\n"
"  -c, --config CONF     configuration file (default: $MICA_CONF, else\n"
"                        ./mica.conf); mica-admin init writes one\n"
"  -n, --check-config    load the configuration and keys, print\n"
"                        \"configuration OK\" and exit\n"
"  -d, --debug           log at debug level\n"
"  -h, --help            this text\n"
"\n"
"Signals: SIGTERM/SIGINT stop (in-flight work is finished, the store is\n"
"closed cleanly, exit 0); SIGHUP reloads the log level and policy.\n");
}

/* Reads a passphrase file's first line into sodium_malloc'd memory. */
static char *
read_passphrase(const char *path)
{
	FILE *f;
	char *pw;
	size_t n;
	struct stat sb;

	if ((f = fopen(path, "r")) == NULL)
		fatal("key passphrase file %s", path);
	if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077))
		fatalx("key passphrase file %s is readable by group or others "
		    "(mode %03o); chmod 600 it", path,
		    (unsigned)(sb.st_mode & 0777));
	if ((pw = sodium_malloc(1024)) == NULL)
		fatalx("out of memory");
	if (fgets(pw, 1024, f) == NULL)
		pw[0] = '\0';
	fclose(f);
	n = strcspn(pw, "\r\n");
	pw[n] = '\0';
	return pw;
}

static int
load_ca_files(const char *path)
{
	X509 *x = NULL;
	FILE *f;
	unsigned char *p = NULL;
	int n;

	if ((f = fopen(path, "r")) == NULL)
		return 0;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return 0;
	if ((n = i2d_X509(x, &p)) <= 0) {
		X509_free(x);
		return 0;
	}
	ca_der = malloc((size_t)n);
	memcpy(ca_der, p, (size_t)n);
	ca_der_len = (size_t)n;
	OPENSSL_free(p);
	{
		BIO *b = BIO_new(BIO_s_mem());
		char *d;
		long l;

		PEM_write_bio_X509(b, x);
		l = BIO_get_mem_data(b, &d);
		ca_pem = malloc((size_t)l);
		memcpy(ca_pem, d, (size_t)l);
		ca_pem_len = (size_t)l;
		BIO_free(b);
	}
	X509_free(x);
	return 1;
}

static void
route_ca(struct evhttp_request *req, const char *path, void *arg)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *b = evhttp_request_get_output_buffer(req);

	(void)arg;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	if (strcmp(path, "/ca.crt") == 0 || strcmp(path, "/ca.der") == 0) {
		/* RFC 5280 4.2.2.1: caIssuers over HTTP is DER */
		evhttp_add_header(h, "Content-Type", "application/pkix-cert");
		evbuffer_add_reference(b, ca_der, ca_der_len, NULL, NULL);
	} else if (strcmp(path, "/ca.pem") == 0) {
		evhttp_add_header(h, "Content-Type", "application/x-pem-file");
		evbuffer_add_reference(b, ca_pem, ca_pem_len, NULL, NULL);
	} else {
		evhttp_send_error(req, 404, "Not Found");
		return;
	}
	evhttp_add_header(h, "Cache-Control", "max-age=3600, public");
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void
route_crl(struct evhttp_request *req, const char *path, void *arg)
{
	crl_http_handle(arg, req, path);
}

static void
route_metrics(struct evhttp_request *req, const char *path, void *arg)
{
	struct wb m;
	struct evbuffer *b = evhttp_request_get_output_buffer(req);
	char line[256];

	(void)path;
	(void)arg;
	wb_init(&m);
	if (micad.ocsp != NULL)
		ocsp_metrics_append(micad.ocsp, &m);
	snprintf(line, sizeof(line), "# TYPE mica_uptime_seconds gauge\n"
	    "mica_uptime_seconds %lld\n",
	    (long long)(time(NULL) - micad.started));
	wb_str(&m, line);
	if (!wb_ok(&m)) {
		wb_cleanup(&m);
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	evbuffer_add(b, m.data, m.len);
	wb_cleanup(&m);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_info("signal %d: stopping", (int)sig);
	micad.stopping = 1;
	event_base_loopexit(micad.base, NULL);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct mica_conf *nc;
	char err[1024];

	(void)sig;
	(void)what;
	(void)arg;
	if ((nc = calloc(1, sizeof(*nc))) == NULL)
		return;
	if (!conf_load(nc, micad.conf->path, err, sizeof(err))) {
		log_warnx("SIGHUP: configuration not reloaded: %s", err);
		free(nc);
		return;
	}
	log_setlevel(nc->daemon.log_level);
	micad.conf->daemon.log_level = nc->daemon.log_level;
	micad.conf->policy = nc->policy;
	micad.conf->ca.default_days = nc->ca.default_days;
	snprintf(micad.conf->ca.key_usage, sizeof(micad.conf->ca.key_usage),
	    "%s", nc->ca.key_usage);
	snprintf(micad.conf->ca.ext_key_usage,
	    sizeof(micad.conf->ca.ext_key_usage), "%s", nc->ca.ext_key_usage);
	log_info("SIGHUP: reloaded [daemon] log_level, [policy], [ca] "
	    "default_days/key_usage/ext_key_usage; not reloaded (restart "
	    "needed): listeners, keys, store, [http], [protocol], [crl]");
	free(nc);
}

static void
start_http(struct mica_conf *c)
{
	struct ocsp_opts oo;
	struct ocsp_http_opts ho;
	struct crl_opts co;
	X509 *ca = ca_signer_get0_cert(micad.signer);

	ocsp_opts_defaults(&oo);
	oo.next_update = c->http.ocsp_next_update;
	oo.max_certids = c->http.ocsp_max_certids;
	oo.unknown_revoked = c->http.ocsp_unknown_revoked;
	oo.max_request = (size_t)c->http.max_body;
	micad.ocsp = ocsp_responder_new(&oo, ca,
	    ca_signer_get0_ocsp_cert(micad.signer),
	    ca_signer_get0_ocsp_key(micad.signer), micad.store);
	if (micad.ocsp == NULL)
		fatalx("cannot start the OCSP responder");

	memset(&co, 0, sizeof(co));
	co.next_update = c->crl.next_update;
	co.base_url = c->ca.http_url;
	co.publish_dir = c->crl.publish_dir;
	co.rebuild_delay_ms = (unsigned)c->crl.rebuild_delay_ms;
	micad.crl = crl_service_new(micad.store, ca,
	    ca_signer_get0_key(micad.signer), &co);
	if (micad.crl == NULL)
		fatalx("cannot start the CRL service");

	ocsp_http_opts_defaults(&ho);
	if (strlen(c->http.listen) >= sizeof(ho.listen))
		fatalx("[http] listen: too long");
	memcpy(ho.listen, c->http.listen, strlen(c->http.listen) + 1);
	ho.threads = c->http.threads;
	ho.max_body = c->http.max_body;
	ho.timeout = c->http.idle_timeout;
	if ((http = ocsp_http_new(micad.ocsp, &ho)) == NULL)
		fatalx("cannot set up HTTP on %s", c->http.listen);
	if (!load_ca_files(c->ca.cert))
		fatalx("cannot read %s", c->ca.cert);
	ocsp_http_add_route(http, "/ca.", route_ca, NULL);
	ocsp_http_add_route(http, "/crl", route_crl, micad.crl);
	ocsp_http_add_route(http, "/metrics", route_metrics, NULL);
	if (!ocsp_http_start(http))
		fatalx("cannot listen for HTTP on %s", c->http.listen);
	log_info("http listening on %s (OCSP, CRL, CA certificate)",
	    c->http.listen);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'n' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct mica_conf conf;
	struct ca_signer_paths sp;
	struct store_opts so;
	struct event *ev_term, *ev_int, *ev_hup;
	const char *cpath = getenv("MICA_CONF");
	char err[1024], *pass = NULL;
	enum store_rc rc;
	int ch, check = 0, debug = 0;

	log_init("micad", LOG_LVL_INFO);
	while ((ch = getopt_long(argc, argv, "c:ndh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cpath = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'd':
			debug = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (cpath == NULL)
		cpath = "mica.conf";
	if (!conf_load(&conf, cpath, err, sizeof(err)))
		fatalx("%s", err);
	log_setlevel(debug ? LOG_LVL_DEBUG : conf.daemon.log_level);
	if (sodium_init() < 0)
		fatalx("libsodium initialisation failed");

	memset(&sp, 0, sizeof(sp));
	sp.ca_cert = conf.ca.cert;
	sp.ca_key = conf.ca.key;
	sp.ocsp_cert = conf.ca.ocsp_cert;
	sp.ocsp_key = conf.ca.ocsp_key;
	if (conf.ca.key_passphrase_file[0] != '\0')
		sp.passphrase = pass = read_passphrase(
		    conf.ca.key_passphrase_file);
	if (!ca_signer_load(&micad.signer, &sp, err, sizeof(err)))
		fatalx("%s", err);
	if (pass != NULL)
		sodium_free(pass);
	if (check) {
		ca_signer_free(micad.signer);
		printf("configuration OK\n");
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() != 0)
		fatalx("libevent threads unavailable");
	memset(&so, 0, sizeof(so));
	so.map_size = conf.store.map_size;
	so.map_max = conf.store.map_max;
	so.no_grow = conf.store.no_grow;
	so.exclusive = 1;
	rc = store_open(&micad.store, conf.store.path, &so);
	if (rc == STORE_LOCKED)
		fatalx("store %s is in use by another micad; refusing to "
		    "start a second one", conf.store.path);
	if (rc != STORE_OK)
		fatalx("store %s: %s", conf.store.path, store_strerror(rc));

	micad.conf = &conf;
	micad.started = time(NULL);
	if ((micad.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	if ((micad.workers = workq_new(micad.base, conf.daemon.workers)) ==
	    NULL)
		fatalx("cannot start worker threads");

	start_http(&conf);
	if ((micad.reissue = reissue_new(&micad)) == NULL)
		fatalx("cannot set up the reissue workflow");
	if (!ca_listener_start(&micad))
		fatalx("cannot listen for the CA protocol on %s",
		    conf.proto.listen);
	if (!adm_server_start(&micad))
		fatalx("cannot serve the admin socket %s", conf.admin.socket);

	ev_term = evsignal_new(micad.base, SIGTERM, on_stop, NULL);
	ev_int = evsignal_new(micad.base, SIGINT, on_stop, NULL);
	ev_hup = evsignal_new(micad.base, SIGHUP, on_hup, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_hup, NULL);

	log_info("micad ready: CA protocol on %s, http on %s, admin socket %s",
	    conf.proto.listen, conf.http.listen, conf.admin.socket);
	event_base_dispatch(micad.base);

	/* Stop taking work, finish what is in flight, close cleanly. */
	adm_server_stop();
	ca_listener_stop();
	ocsp_http_stop(http);
	workq_free(micad.workers);
	reissue_free(micad.reissue);
	ocsp_http_free(http);
	crl_service_free(micad.crl);
	ocsp_responder_free(micad.ocsp);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_base_free(micad.base);
	store_close(micad.store);
	ca_signer_free(micad.signer);
	free(ca_der);
	free(ca_pem);
	log_info("stopped");
	return 0;
}
