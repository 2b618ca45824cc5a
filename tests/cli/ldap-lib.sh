# ldap-lib.sh - shared by the LDAP directory tests: private slapd servers
# (cn=config made with slapadd -n0, an mdb database, the schema of
# conf/imta-schema.ldif) on free loopback ports, loaded with
# conf/directory.ldif, and an MTA instance configured to use them.
#
# Only the slapd processes started here are signalled, by their pids.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"

SLAPD=${SLAPD:-/usr/sbin/slapd}
SLAPADD=${SLAPADD:-/usr/sbin/slapadd}
LDAP_ADMIN_DN="cn=admin,o=example"
LDAP_ADMIN_PW="adminpw"
LDAP_MTA_DN="cn=mta,o=example"
LDAP_MTA_PW="mtapw"
SLAPD_PIDS=""

# Is everything a real slapd needs here?
ldap_available() {
	[ -x "$SLAPD" ] && [ -x "$SLAPADD" ] && command -v ldapadd >/dev/null &&
		command -v ldapmodify >/dev/null && [ -f /etc/ldap/schema/core.ldif ] &&
		[ -d /usr/lib/ldap ]
}

# slapd_config NAME: the cn=config of server NAME in $T/ldap-NAME, with
# the olcGlobal lines of SLAPD_TLS_CONFIG if set (each ending in a newline).
slapd_config() {
	local d="$T/ldap-$1"
	mkdir -p "$d/slapd.d" "$d/db"
	cat >"$d/config.ldif" <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $d/slapd.pid
olcAuthzRegexp: {0}"gidNumber=[0-9]+\\+uidNumber=[0-9]+,cn=peercred,cn=external,cn=auth" "$LDAP_MTA_DN"
olcAuthzRegexp: {1}"uid=([^,]+),cn=[^,]+,cn=auth" "cn=\$1,o=example"
olcSaslSecProps: none
${SLAPD_TLS_CONFIG:-}
dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: {0}back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

include: file:///etc/ldap/schema/dyngroup.ldif

include: file://$abs_top_srcdir/conf/imta-schema.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: o=example
olcDbDirectory: $d/db
olcDbMaxSize: 33554432
olcRootDN: $LDAP_ADMIN_DN
olcRootPW: $LDAP_ADMIN_PW
olcDbIndex: objectClass eq
olcDbIndex: mail,mailAlternateAddress,mailEquivalentAddress,uid eq
olcDbIndex: sunPreferredDomain,associatedDomain,inetDomainBaseDN eq
olcAccess: {0}to attrs=userPassword by dn.exact="$LDAP_MTA_DN" read by anonymous auth by * none
olcAccess: {1}to * by * read
EOF
	"$SLAPADD" -n0 -F "$d/slapd.d" -l "$d/config.ldif" >"$d/slapadd.log" 2>&1
}

# The data: the shipped demo directory, then the MTA's own bind entry.
slapd_data() {
	cat >"$T/ldap-mta.ldif" <<EOF
dn: $LDAP_MTA_DN
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: mta
userPassword: $LDAP_MTA_PW
EOF
}

# slapd_running NAME PORT: does the server answer a search?
slapd_running() {
	ldapsearch -x -LLL -o nettimeout=1 -H "ldap://127.0.0.1:$2" -b "" -s base \
		namingContexts >/dev/null 2>&1
}

# slapd_start NAME PORT: start (or restart) server NAME, loading the data
# the first time; it also listens on SLAPD_EXTRA_URLS if set.  Its pid
# goes to SLAPD_PID_<NAME>.
slapd_start() {
	local name=$1 port=$2 d="$T/ldap-$1" pid
	local fresh=false
	if [ ! -d "$d/slapd.d" ]; then
		slapd_config "$name" || { diag_file "$d/slapadd.log"; return 1; }
		fresh=true
	fi
	"$SLAPD" -d 0 -h "ldap://127.0.0.1:$port/ ldapi://$(ldapi_path "$name") ${SLAPD_EXTRA_URLS:-}" \
		-F "$d/slapd.d" >"$d/slapd.log" 2>&1 &
	pid=$!
	eval "SLAPD_PID_$name=$pid"
	SLAPD_PIDS="$SLAPD_PIDS $pid"
	if ! wait_until 100 slapd_running "$name" "$port"; then
		echo "# slapd $name did not start"
		diag_file "$d/slapd.log"
		return 1
	fi
	# The shipped file goes in with ldapadd, as an administrator would
	# load it.
	if $fresh; then
		slapd_data
		ldap_admin ldapadd "$port" -f "$abs_top_srcdir/conf/directory.ldif" \
			>"$d/ldapadd.log" 2>&1 &&
			ldap_admin ldapadd "$port" -f "$T/ldap-mta.ldif" >>"$d/ldapadd.log" 2>&1 ||
			{ diag_file "$d/ldapadd.log"; return 1; }
	fi
}

# The ldapi:// socket of server NAME, URL-encoded.
ldapi_path() {
	printf '%s' "$T/ldap-$1/ldapi" | sed 's|/|%2F|g'
}

# slapd_stop NAME: stop server NAME (by the pid it was started with).
slapd_stop() {
	local pid
	eval "pid=\${SLAPD_PID_$1:-}"
	[ -n "$pid" ] && stop_pid "$pid"
	eval "SLAPD_PID_$1="
}

slapd_stop_all() {
	for pid in $SLAPD_PIDS; do
		stop_pid "$pid"
	done
}

# ldap_admin COMMAND PORT ARGS...: ldapmodify/ldapadd/ldapdelete as the
# database's root.
ldap_admin() {
	local cmd=$1 port=$2
	shift 2
	"$cmd" -x -H "ldap://127.0.0.1:$port" -D "$LDAP_ADMIN_DN" -w "$LDAP_ADMIN_PW" "$@"
}

# ldap_instance PORT...: an instance whose directory is the slapd servers
# on PORTs (in that order), bound as cn=mta with a password file.
ldap_instance_config() {
	local uris="" p
	for p in "$@"; do
		uris="$uris ldap://127.0.0.1:$p"
	done
	printf '%s\n' "$LDAP_MTA_PW" >"$C/ldap.secret"
	chmod 600 "$C/ldap.secret"
	sed -i 's|^IMTA_DIRECTORY=.*|IMTA_DIRECTORY=ldap:|' "$C/imta_tailor"
	# Earlier LDAP settings of a test give way to these.
	sed -i '/^LDAP_\(URIS\|BIND_DN\|BIND_PASSWORD_FILE\|BASE_DN\|TIMEOUT\|CONNECT_TIMEOUT\|RETRY_INTERVAL\)=/d' \
		"$C/option.dat"
	cat >>"$C/option.dat" <<EOF
LDAP_URIS=${uris# }
LDAP_BIND_DN=$LDAP_MTA_DN
LDAP_BIND_PASSWORD_FILE=ldap.secret
LDAP_BASE_DN=o=example
LDAP_TIMEOUT=2
LDAP_CONNECT_TIMEOUT=1
LDAP_RETRY_INTERVAL=2
EOF
}
