/*
 * fuzz-rewrite.c - libFuzzer harness for the rewrite engine.
 *
 * An input whose first byte is 0x01 is an imta.cnf text (rules, a blank
 * line, channel blocks): it is parsed, its rules checked, and a few fixed
 * addresses are rewritten with it.  Any other input is an address,
 * rewritten with a fixed configuration rich in meta rules, tags,
 * conditions and mapping lookups; the first byte also picks the flags and
 * the source channel.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <glib.h>

#include <imta/rewrite.h>
#include <imta/imta_cnf.h>
#include <imta/mappings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_cnf_text[] =
	"$*  $A$E$F$U%$H$V$H@localhost\n"
	"mail.example.com  $U%$D@mail.example.com\n"
	".corp.example.com  $U%$H$D@tcp_intranet-daemon\n"
	"[]  $E$R${INTERNAL_IP,$L}$U%[$L]@tcp_intranet-daemon\n"
	"[10.]  $U%[$L]@tcp_intranet-daemon\n"
	"[*.*.*.*]  $U%$!0.$&1.$*0@tcp-daemon\n"
	".lmtp  $E$F$U%$H.lmtp@lmtpcs-daemon\n"
	".removable  $U%$H\n"
	"loop.test  $U%loop2.test\n"
	"loop2.test  $U%loop.test\n"
	".grow.test  $U%x$H$D\n"
	".dup.test  $U$U%$H$H$H$D\n"
	"*.*.wild.test  $U%$!0-$&0.wild.test@tcp-daemon$T\n"
	"tag.test  $U%tagged.test$Tstage2\n"
	"stage2|tagged.test  $U%$D@tcp_siroe-daemon$?tagged-failure\n"
	"stage2|.  $U%$H@tcp-daemon$T\n"
	"acme.com  $U@mail.acme.com$Nverify\n"
	"acme.com  $U%acme.com@verify-daemon\n"
	"$%  $U%$H@tcp-daemon$P\n"
	"$!  $U%$H@uucp-daemon\n"
	"map.test  $U%${DOMAINS,$U}@tcp-daemon\n"
	"nest.test  $U%${DOMAINS,${DOMAINS,$H$D}}@tcp-daemon\n"
	"case.test  $\\$U%$^$D$_@tcp-daemon$W\n"
	"sub.test  $0U+$1U%$1D@$2D@tcp-daemon\n"
	"route.test  $U@$D@relay.test@tcp_intranet-daemon\n"
	"fail.test  $?No-such-domain\n"
	"unsup.test  $U%$=$D@x\n"
	"cond.test  $U%$D@reprocess-daemon$Mtcp_local$1M$1~-error$?temporary\n"
	"dest.test  $U%$D@tcp-daemon$Qtcp_local$Ctcp_siroe\n"
	"bad.test  $U%$D%$D\n"
	"worse.test  $U%$K\n"
	"local.test  $U%$D@localhost\n"
	".  $U%$H@tcp-daemon\n"
	"\n"
	"l\n"
	"mail.example.com\n"
	"\n"
	"tcp_local smtp mx\n"
	"tcp-daemon\n"
	"\n"
	"tcp_intranet smtp mx\n"
	"tcp_intranet-daemon\n"
	"\n"
	"tcp_siroe smtp\n"
	"tcp_siroe-daemon\n"
	"\n"
	"tcp_acme smtp\n"
	"mail.acme.com\n"
	"\n"
	"lmtpcs\n"
	"lmtpcs-daemon\n"
	"\n"
	"verify\n"
	"verify-daemon\n"
	"\n"
	"reprocess\n"
	"reprocess-daemon\n"
	"\n"
	"tcp_gw smtp routelocal\n"
	"gw-daemon\n"
	"gw.example.com\n"
	"\n"
	"uucp bangoverpercent\n"
	"uucp-daemon\n"
	"\n"
	"tcp_nr smtp norules\n"
	"norules-daemon\n";

static const char fuzz_mappings_text[] =
	"INTERNAL_IP\n"
	"\n"
	"  $(10.0.0.0/8)  $Y\n"
	"  127.0.0.1  $Y\n"
	"  *  $N\n"
	"\n"
	"DOMAINS\n"
	"\n"
	"  old.example  new.example\n"
	"  *.nest.test  $0.old.example\n"
	"  *  $0.map.test\n";

static const char *const fuzz_sources[] = {
	NULL, "tcp_local", "verify", "uucp", "tcp_nr", "reprocess", "tcp_intranet", "nosuch",
};

static const char *const fuzz_addresses[] = {
	"u@a.b.example.com", "u%x.org@mail.example.com", "@r.org,@s.org:u@h.org",
	"x@[10.1.2.3]", "a!b!u%c", "postmaster", "u+x@tag.test", "u@[IPv6:2001:db8::1]",
};

static void
fuzz_rewrite(const ImtaCnf *cnf, const ImtaMappings *mappings, const char *address,
	     guint selector)
{
	g_autoptr(GString) trace = g_string_new(NULL);
	ImtaRewriteContext ctx = {
		.cnf = cnf,
		.mappings = mappings,
		.source_channel = fuzz_sources[selector % G_N_ELEMENTS(fuzz_sources)],
		.flags = (selector >> 3) & 3u,
		.trace = (selector & 0x20) ? trace : NULL,
		.destination_channel = (selector & 0x40) ? "tcp_local" : NULL,
	};
	ImtaRewriteResult result;
	GError *error = NULL;

	if (selector & 0x80) {
		if (imta_rewrite_address(&ctx, address, &result, NULL))
			imta_rewrite_result_clear(&result);
		return;
	}
	if (imta_rewrite_address(&ctx, address, &result, &error)) {
		g_assert(result.address != NULL && result.channel != NULL);
		g_assert(result.routing_host != NULL);
		imta_rewrite_result_clear(&result);
	} else {
		g_assert(error != NULL && result.address == NULL);
		g_error_free(error);
	}
}

/* Includes would read arbitrary files: such inputs are not interesting. */
static gboolean
fuzz_has_include(const char *text, size_t size)
{
	for (size_t i = 0; i < size; i++)
		if (text[i] == '<' && (i == 0 || text[i - 1] == '\n'))
			return TRUE;
	return FALSE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static ImtaCnf *cnf;
	static ImtaMappings *mappings;
	static GStringChunk *names;

	if (cnf == NULL) {
		cnf = imta_cnf_parse_text("fuzz.cnf", fuzz_cnf_text, strlen(fuzz_cnf_text), NULL,
					  NULL);
		names = g_string_chunk_new(256);
		mappings = imta_mappings_parse_text("fuzz.mappings", fuzz_mappings_text,
						    strlen(fuzz_mappings_text), names, NULL);
		g_assert(cnf != NULL && mappings != NULL);
	}
	if (size == 0)
		return 0;

	if (data[0] == 0x01) {
		const char *text = (const char *)data + 1;
		ImtaCnf *own;

		if (fuzz_has_include(text, size - 1))
			return 0;
		own = imta_cnf_parse_text("input.cnf", text, size - 1, NULL, NULL);
		if (own == NULL)
			return 0;
		imta_rewrite_check_rules(own, NULL);
		for (guint i = 0; i < G_N_ELEMENTS(fuzz_addresses); i++)
			fuzz_rewrite(own, mappings, fuzz_addresses[i], i * 37u);
		imta_cnf_free(own);
	} else {
		g_autofree char *address = g_strndup((const char *)data + 1, size - 1);

		fuzz_rewrite(cnf, mappings, address, data[0]);
	}
	return 0;
}
