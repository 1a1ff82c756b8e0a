# mica.vcl - Varnish (Debian varnish 7.x) in front of micad's OCSP
# responder: caches RFC 5019 GET answers for as long as micad's
# Cache-Control says (at most [http] cache_max_age, default 60 s), passes
# POST, and takes micad's BAN requests so that a revoked certificate is
# never answered "good" from the cache after micad acknowledged it.
#
#   varnishd -F -n /var/lib/varnish/mica -a :80 -f /etc/varnish/mica.vcl \
#       -s malloc,256m
#
# micad, [http]:  ban_urls = http://127.0.0.1:6081   (this varnishd)
#
# How a ban works: every cacheable OCSP answer carries
# "X-Mica-Serials: HEX[,HEX...]" (the serials it answers for, upper-case
# hex as mica prints them).  After each commit that changes a status,
# micad sends "BAN /" with "X-Mica-Ban: (^|,)(HEX|HEX...)(,|$)", a regular
# expression over that field.  The ban tests obj.* only, so the ban
# lurker can retire it in the background.  micad waits for the 200 at
# most [http] ban_timeout_ms; a lost ban leaves a stale answer for at
# most the answer's max-age (no grace, no keep: see vcl_backend_response).
vcl 4.1;

import std;

backend mica {
	.host = "127.0.0.1";
	.port = "7780";
}

# Who may ban: the hosts running micad (loopback when they share one).
acl mica_ban {
	"127.0.0.1";
	"::1";
}

sub vcl_recv {
	if (req.method == "BAN") {
		if (client.ip !~ mica_ban) {
			return (synth(403, "Forbidden"));
		}
		# only what micad sends: serials, "|", "(", ")", "^", "$",
		# "," and "." (no space, no quote: one ban argument)
		if (!req.http.X-Mica-Ban ||
		    req.http.X-Mica-Ban !~ "^[0-9A-F(|)^$,.]{1,4096}$") {
			return (synth(400, "Bad X-Mica-Ban"));
		}
		if (std.ban("obj.http.X-Mica-Serials ~ " +
		    req.http.X-Mica-Ban)) {
			return (synth(200, "Banned"));
		}
		return (synth(400, std.ban_error()));
	}
	# POST answers are micad's to give (and no-store anyway)
	if (req.method != "GET" && req.method != "HEAD") {
		return (pass);
	}
	# otherwise the built-in rules (requests with credentials pass)
}

sub vcl_backend_response {
	# Only OCSP answers micad marked for caches (they name their
	# serials, so a ban can reach them).  Everything else, 404s and
	# micad's no-store answers included, is fetched each time.
	if (beresp.status != 200 || !beresp.http.X-Mica-Serials) {
		set beresp.uncacheable = true;
		set beresp.ttl = 0s;
		return (deliver);
	}
	# beresp.ttl comes from micad's max-age; never serve past it
	set beresp.grace = 0s;
	set beresp.keep = 0s;
}
