// The systemd unit `dispatcher install-service` writes. The daemon runs in the
// foreground (Type=exec), logs JSON lines to stderr (journald keeps them),
// reloads on SIGHUP, keeps its store in StateDirectory and its control socket
// in RuntimeDirectory. It runs as root but with only the capabilities it uses:
//   CAP_NET_ADMIN  iptables, ipset, ip rule/route, conntrack, sysctls, ping -m
//   CAP_NET_RAW    ping's raw ICMP socket
//   CAP_SETGID     running dig, nsupdate and address lookups with an uplink's group
// NoNewPrivileges is left off on purpose: a local sendmail (notify.email
// without smtp) is setgid on Debian and would fail under it.
// Node runs with --enable-source-maps so a stack trace in the journal names
// the src/ line, not the built file's (DAEMON_NODE_FLAGS). KillMode=mixed: stop and restart send
// SIGTERM to the daemon alone (it stops its monitors itself) and SIGKILL to
// what is left, so the radvd of IPv6 prefix mode sends no last advertisement
// (it would withdraw the gateway as the hosts' router and deprecate every
// prefix on each restart); hosts keep both until the next daemon's radvd
// advertises again.

import { dirname, join } from 'node:path';
import type { HookPaths } from './ppp-hook.js';

/**
 * How Node runs the daemon, here and in the labs (src/lab/): source maps on,
 * and a young generation of 4 MB semi-spaces instead of Node's 16 MB. A
 * daemon's garbage is a scan's or a burst's, and is gone before it fills even
 * the small one: measured at 50,000 clients (npm run bench, footprint), RSS
 * 175 MB → 145 MB, idle CPU unchanged within the run-to-run noise (4.2 → 4.5 %).
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--enable-source-maps', '--max-semi-space-size=4'];

/** systemd's own quoting for one ExecStart word: double quotes, with \ and " escaped; % doubled. */
function word(text: string): string {
  const escaped = text.replace(/%/g, '%%');
  return /^[A-Za-z0-9/._:+@=,-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function systemdUnit(paths: HookPaths): string {
  const start = [paths.node, ...DAEMON_NODE_FLAGS, paths.dispatcher, '--config', paths.config, 'start'].map(word).join(' ');
  return `# Installed by \`dispatcher install-service\`.
[Unit]
Description=dispatcher: multi-uplink NAT gateway (client pools, per-uplink routing, failover)
Documentation=file://${join(dirname(dirname(paths.dispatcher)), 'README.md')}
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
ExecStart=${start}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2s
TimeoutStopSec=15s
KillMode=mixed
StateDirectory=dispatcher
RuntimeDirectory=dispatcher
SyslogIdentifier=dispatcher
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_SETGID
AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_SETGID
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET
RestrictRealtime=yes
LockPersonality=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
`;
}
