/* scanner_policy.c -- the policy (clamd.conf's meaning) as libclamav's scan and database options,
 * and as JSON for /version. */
#include "scanner_priv.h"

#include <stdio.h>

/* The scan options, built from the policy as clamd builds them (clamd/server-th.c). Fixed for the
 * life of the process: that is what keeps our clean cache (and libclamav's, were it on) valid,
 * since neither remembers the options a verdict was reached with. */
struct cl_scan_options
scanner_scan_options(const struct scanner_policy *p)
{
	struct cl_scan_options o = { 0 };

	o.general = p->heuristic_alerts ? CL_SCAN_GENERAL_HEURISTICS : 0;
	o.parse = (p->scan_archive ? CL_SCAN_PARSE_ARCHIVE : 0) | (p->scan_elf ? CL_SCAN_PARSE_ELF : 0) |
	    (p->scan_pdf ? CL_SCAN_PARSE_PDF : 0) | (p->scan_swf ? CL_SCAN_PARSE_SWF : 0) |
	    (p->scan_hwp3 ? CL_SCAN_PARSE_HWP3 : 0) | (p->scan_xmldocs ? CL_SCAN_PARSE_XMLDOCS : 0) |
	    (p->scan_mail ? CL_SCAN_PARSE_MAIL : 0) | (p->scan_ole2 ? CL_SCAN_PARSE_OLE2 : 0) |
	    (p->scan_html ? CL_SCAN_PARSE_HTML : 0) | (p->scan_pe ? CL_SCAN_PARSE_PE : 0) |
	    (p->scan_onenote ? CL_SCAN_PARSE_ONENOTE : 0) | (p->scan_image ? CL_SCAN_PARSE_IMAGE : 0) |
	    (p->scan_image_fuzzy_hash ? CL_SCAN_PARSE_IMAGE_FUZZY_HASH : 0);
	/* clamd: encrypted-archive alerts need archive parsing; AlertEncrypted adds to the other two. */
	if ((p->alert_encrypted || p->alert_encrypted_archive) && p->scan_archive)
		o.heuristic |= CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE;
	if (p->alert_encrypted || p->alert_encrypted_doc)
		o.heuristic |= CL_SCAN_HEURISTIC_ENCRYPTED_DOC;
	/* Without it libclamav answers CLEAN for what it did not finish (see scanner_verdict). */
	if (p->alert_exceeds_max)
		o.heuristic |= CL_SCAN_HEURISTIC_EXCEEDS_MAX;
	if (p->alert_broken_executables && (p->scan_pe || p->scan_elf))
		o.heuristic |= CL_SCAN_HEURISTIC_BROKEN;
	if (p->alert_ole2_macros && p->scan_ole2)
		o.heuristic |= CL_SCAN_HEURISTIC_MACROS;
	/* clamd ties both to PhishingScanURLs, which CL_DB_STDOPT's CL_DB_PHISHING_URLS stands for. */
	if (p->alert_phishing_cloak)
		o.heuristic |= CL_SCAN_HEURISTIC_PHISHING_CLOAK;
	if (p->alert_phishing_ssl_mismatch)
		o.heuristic |= CL_SCAN_HEURISTIC_PHISHING_SSL_MISMATCH;
	return o;
}

int
scanner_policy_json(const struct scanner_policy *p, char *out, size_t outlen)
{
	struct cl_scan_options o = scanner_scan_options(p);
	int n;

#define B(x) ((x) ? "true" : "false")
	n = snprintf(out, outlen, "\"alert_encrypted_archive\":%s,\"alert_encrypted_doc\":%s,"
	    "\"alert_exceeds_max\":%s,\"detect_pua\":%s,\"pua_include\":\"%s\",\"pua_exclude\":\"%s\","
	    "\"heuristic_alerts\":%s,\"alert_broken_executables\":%s,\"alert_ole2_macros\":%s,"
	    "\"alert_phishing_ssl_mismatch\":%s,\"alert_phishing_cloak\":%s,\"scan_pe\":%s,"
	    "\"scan_elf\":%s,\"scan_ole2\":%s,\"scan_pdf\":%s,\"scan_swf\":%s,\"scan_html\":%s,"
	    "\"scan_xmldocs\":%s,\"scan_hwp3\":%s,\"scan_onenote\":%s,\"scan_archive\":%s,"
	    "\"scan_mail\":%s,\"scan_image\":%s,\"scan_image_fuzzy_hash\":%s",
	    B(o.heuristic & CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE),
	    B(o.heuristic & CL_SCAN_HEURISTIC_ENCRYPTED_DOC), B(p->alert_exceeds_max),
	    B(p->detect_pua), p->detect_pua && p->pua_include ? p->pua_include : "",
	    p->detect_pua && p->pua_exclude ? p->pua_exclude : "", B(p->heuristic_alerts),
	    B(o.heuristic & CL_SCAN_HEURISTIC_BROKEN), B(o.heuristic & CL_SCAN_HEURISTIC_MACROS),
	    B(p->alert_phishing_ssl_mismatch), B(p->alert_phishing_cloak), B(p->scan_pe),
	    B(p->scan_elf), B(p->scan_ole2), B(p->scan_pdf), B(p->scan_swf), B(p->scan_html),
	    B(p->scan_xmldocs), B(p->scan_hwp3), B(p->scan_onenote), B(p->scan_archive),
	    B(p->scan_mail), B(p->scan_image), B(p->scan_image_fuzzy_hash));
#undef B
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* clamd's way (clamd.c): DetectPUA loads the PUA signature files (.ndu, .ldu, ...), and one
 * category, as ".cat.", keeps or drops those whose name has it. */
void
scanner_set_policy(struct scanner *s, const struct scanner_policy *p)
{
	const char *cat = NULL;

	s->scan_opts = scanner_scan_options(p);
	s->db_options = CL_DB_STDOPT;
	if (!p->detect_pua)
		return;
	s->db_options |= CL_DB_PUA;
	if (p->pua_include != NULL && p->pua_include[0] != '\0') {
		s->db_options |= CL_DB_PUA_INCLUDE;
		cat = p->pua_include;
	} else if (p->pua_exclude != NULL && p->pua_exclude[0] != '\0') {
		s->db_options |= CL_DB_PUA_EXCLUDE;
		cat = p->pua_exclude;
	}
	if (cat != NULL)
		snprintf(s->pua_cats, sizeof(s->pua_cats), ".%s.", cat);
}

