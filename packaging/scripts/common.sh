# Shared by every maintainer script of the switchyard package (cmd/dist puts this in
# front of each). POSIX sh. DPKG_ROOT is the root being installed into: empty for the
# running system; dpkg sets it for an install into another root
# (--root with --force-script-chrootless), and the tests set it for a scratch root.
# Every step is idempotent: it checks before it acts.

root=${DPKG_ROOT:-}
unit=switchyard-registrar.service
token=$root/etc/switchyard/registrar.token
proxy_token=$root/etc/switchyard/proxy.token
state=$root/var/lib/switchyard

# systemd_running: systemctl may be used (systemd is PID 1, and the files are being
# installed into the running system, not a chroot or scratch root).
systemd_running() {
	[ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

# field FILE NAME N: field N of the colon-separated line for NAME in FILE (passwd,
# group), read from the root's own files so that a scratch root works too.
field() {
	[ -f "$1" ] || return 0
	awk -F: -v n="$2" -v i="$3" '$1 == n { print $i; exit }' "$1"
}

create_user() {
	if [ -z "$(field "$root/etc/group" switchyard 1)" ] || [ -z "$(field "$root/etc/passwd" switchyard 1)" ]; then
		if [ -z "$root" ] && command -v systemd-sysusers >/dev/null 2>&1; then
			systemd-sysusers switchyard.conf
		fi
	fi
	if [ -z "$(field "$root/etc/group" switchyard 1)" ]; then
		groupadd --system ${root:+--prefix "$root"} switchyard
	fi
	if [ -z "$(field "$root/etc/passwd" switchyard 1)" ]; then
		useradd --system ${root:+--prefix "$root"} --gid switchyard --no-create-home \
			--home-dir /var/lib/switchyard --shell /usr/sbin/nologin --comment Switchyard switchyard
	fi
}

# create_state: the registrar's data directory (systemd's StateDirectory= would create
# it as well; made here so that it exists, owned right, before the first start).
create_state() {
	uid=$(field "$root/etc/passwd" switchyard 3)
	gid=$(field "$root/etc/group" switchyard 3)
	if [ ! -d "$state" ]; then
		mkdir -p "$state"
		chown "$uid:$gid" "$state"
		chmod 0750 "$state"
	fi
}

# create_token FILE: a random token, only when there is no such file (an existing one,
# edited or not, is kept). 0640 root:switchyard: the registrar reads it through its
# group and refuses a token file anyone else may read.
create_token() {
	[ -e "$1" ] && return 0
	gid=$(field "$root/etc/group" switchyard 3)
	mkdir -p "${1%/*}"
	tmp=$1.tmp.$$
	(
		umask 077
		od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp"
		echo >>"$tmp"
	)
	chown "0:$gid" "$tmp"
	chmod 0640 "$tmp"
	mv "$tmp" "$1"
}

start_service() {
	systemd_running || return 0
	systemctl daemon-reload >/dev/null 2>&1 || true
	systemctl enable "$unit" >/dev/null 2>&1 || true
	systemctl start "$unit" || true
}

restart_service() {
	systemd_running || return 0
	systemctl daemon-reload >/dev/null 2>&1 || true
	systemctl try-restart "$unit" switchyard-envoy.service || true
}

stop_service() {
	systemd_running || return 0
	systemctl stop "$unit" switchyard-envoy.service >/dev/null 2>&1 || true
}

disable_service() {
	systemd_running || return 0
	systemctl disable "$unit" switchyard-envoy.service >/dev/null 2>&1 || true
	systemctl daemon-reload >/dev/null 2>&1 || true
}

purge_data() {
	rm -rf "$state"
	rm -f "$token" "$proxy_token"
}
