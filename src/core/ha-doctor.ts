// Doctor's judgement of one gateway of a pair (pure; system/ha-doctor.ts
// gathers the facts): the files `dispatcher ha render` wrote, still what a
// render would write now; keepalived running with them; conntrackd
// answering; the sync link up and addressed on the peer's subnet; the shared
// key usable (the daemon refuses a short one, or one others may read); and
// what the running daemon says of its role and its state channel.

import type { Config } from '../model/config.js';
import type { Link } from '../model/kernel.js';
import type { Status } from '../schema/control.js';
import type { Finding } from './finding.js';
import { cidrContains, maskOf, parseIpv4 } from './ipv4.js';

/** The commands a pair runs beside the dispatcher, with their Debian packages. */
export const HA_TOOLS: Readonly<Record<string, string>> = { keepalived: 'keepalived', conntrackd: 'conntrackd' };

/** The daemon refuses a shorter key (system/ha-files.ts readHaKey). */
export const MIN_KEY_LENGTH = 16;

export interface HaFileFacts {
  readonly name: 'keepalived.conf' | 'conntrackd.conf' | 'notify';
  readonly path: string;
  /** What a render would write now; null when that cannot be told (conntrackd.conf while the sync link has no address). */
  readonly want: string | null;
  /** What the file holds; null when it is missing or unreadable. */
  readonly have: string | null;
  /** Its permission bits; null when missing. */
  readonly mode: number | null;
}

export interface HaDoctorFacts {
  /** How this gateway runs the dispatcher: its config file (for the commands a finding names). */
  readonly configPath: string;
  /** Where `ha render` wrote last (the recorded conntrackd.conf's directory); null: it never ran for this state directory. */
  readonly dir: string | null;
  /** The rendered files, as on disk and as a render now would write them (empty while never rendered). */
  readonly files: readonly HaFileFacts[];
  /** Where keepalived's pid files go (the render's command line puts them under the state directory). */
  readonly runtime: string;
  /** Whether a keepalived runs with this gateway's keepalived.conf; null: not looked for (never rendered). */
  readonly keepalivedRunning: boolean | null;
  /** conntrackd's answer to `-s` through the rendered config's socket; null: not asked (never rendered, or not installed). */
  readonly conntrackd: { readonly answered: true; readonly internal: number | null; readonly external: number | null } | { readonly answered: false; readonly said: string } | null;
  /** ha.key: its permission bits and the length of its first line (the key itself is never kept), or why it cannot be read. */
  readonly key: { readonly mode: number; readonly length: number } | { readonly error: string };
  /** The running daemon's pair status; null when no daemon answered. */
  readonly daemon: Status['ha'] | null;
}

/** Where the two texts first differ, as a line number and both lines: what a stale-file finding shows. */
export function firstDifference(have: string, want: string): string {
  const a = have.split('\n');
  const b = want.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      const show = (line: string | undefined): string => (line === undefined ? '(end of file)' : JSON.stringify(line.trim()));
      return `line ${i + 1} is ${show(a[i])}, a render now writes ${show(b[i])}`;
    }
  }
  return 'they differ only in line endings';
}

function render(facts: HaDoctorFacts, dir: string): string {
  return `dispatcher --config ${facts.configPath} ha render --dir ${dir}`;
}

/** How the running program takes a new version of each file. */
function reloadOf(facts: HaDoctorFacts, file: HaFileFacts): string {
  if (file.name === 'keepalived.conf') return `, then reload keepalived (kill -HUP $(cat ${facts.runtime}/keepalived.pid))`;
  if (file.name === 'conntrackd.conf') return ', then restart conntrackd (it has no reload)';
  return ' (keepalived runs it afresh on every change of role)';
}

function fileFinding(facts: HaDoctorFacts, dir: string, file: HaFileFacts): Finding {
  const check = `ha:file:${file.name}`;
  if (file.have === null) return { check, severity: 'fail', summary: `${file.path} is missing (\`dispatcher ha render\` wrote it there)`, fix: `${render(facts, dir)}${reloadOf(facts, file)}` };
  if (file.name === 'notify' && file.mode !== null && ((file.mode & 0o022) !== 0 || (file.mode & 0o100) === 0)) {
    return {
      check,
      severity: 'fail',
      summary: `${file.path} has mode ${file.mode.toString(8)}: keepalived runs a notify script only if it is executable and no one but root can change it, so no role reaches the dispatcher`,
      fix: `chmod 755 ${file.path} (and no directory above it writable by others)`,
    };
  }
  if (file.want === null) return { check, severity: 'info', summary: `${file.path} cannot be compared with a render now: ha.interface has no IPv4 address (see the sync link's finding)` };
  if (file.have !== file.want) {
    return {
      check,
      severity: 'warn',
      summary: `${file.path} is not what \`dispatcher ha render\` writes for this config now (${firstDifference(file.have, file.want)}): it runs as rendered before the config changed`,
      fix: `${render(facts, dir)}${reloadOf(facts, file)}`,
    };
  }
  return { check, severity: 'ok', summary: `${file.path} is current` };
}

function renderedFindings(facts: HaDoctorFacts): Finding[] {
  if (facts.dir === null) {
    return [
      {
        check: 'ha:render',
        severity: 'fail',
        summary: '`dispatcher ha render` never ran for this gateway: keepalived and conntrackd have no config, and a takeover cannot ask conntrackd to commit',
        fix: `${render(facts, '/etc/dispatcher/ha')}, then run conntrackd and keepalived as it prints (e.g. as systemd services)`,
      },
    ];
  }
  return facts.files.map((file) => fileFinding(facts, facts.dir as string, file));
}

function keepalivedFinding(facts: HaDoctorFacts): Finding[] {
  if (facts.dir === null || facts.keepalivedRunning === null) return [];
  const conf = `${facts.dir}/keepalived.conf`;
  if (facts.keepalivedRunning) return [{ check: 'ha:keepalived', severity: 'ok', summary: `keepalived runs with ${conf}` }];
  const r = facts.runtime;
  return [
    {
      check: 'ha:keepalived',
      severity: 'fail',
      summary: `no keepalived runs with ${conf}: this gateway is never made master, and stays fenced (forwarding nothing)`,
      fix: `keepalived -n -l -f ${conf} -p ${r}/keepalived.pid -r ${r}/vrrp.pid -c ${r}/checkers.pid (e.g. as a systemd service)`,
    },
  ];
}

function conntrackdFinding(facts: HaDoctorFacts): Finding[] {
  const answer = facts.conntrackd;
  if (answer === null || facts.dir === null) return [];
  if (answer.answered) {
    const caches = answer.internal !== null && answer.external !== null ? ` (${answer.internal} connections of its own, ${answer.external} of the peer's)` : '';
    return [{ check: 'ha:conntrackd', severity: 'ok', summary: `conntrackd answers${caches}` }];
  }
  return [
    {
      check: 'ha:conntrackd',
      severity: 'fail',
      summary: `conntrackd does not answer on the socket of ${facts.dir}/conntrackd.conf (${answer.said}): connections are not synced, and a takeover drops them`,
      fix: `conntrackd -C ${facts.dir}/conntrackd.conf (e.g. as a systemd service)`,
    },
  ];
}

function syncLinkFinding(ha: NonNullable<Config['ha']>, links: readonly Link[]): Finding {
  const check = `ha:interface:${ha.interface}`;
  const link = links.find((l) => l.name === ha.interface);
  if (!link)
    return {
      check,
      severity: 'fail',
      summary: `the sync link ${ha.interface} does not exist: the state channel and conntrackd have no way to the peer`,
      fix: `create it (a dedicated cable or VLAN between the two gateways), or correct ha.interface`,
    };
  if (!link.up) return { check, severity: 'fail', summary: `the sync link ${ha.interface} is down`, fix: `ip link set ${ha.interface} up (and in the host's network config)` };
  if (!link.lowerUp) return { check, severity: 'fail', summary: `the sync link ${ha.interface} has no carrier: the cable or VLAN to the peer`, fix: `check the link between the two gateways on ${ha.interface}` };
  const address = link.addresses[0];
  if (!address) return { check, severity: 'fail', summary: `the sync link ${ha.interface} has no IPv4 address`, fix: `give it one on the peer's subnet (ha.peer ${ha.peer}), e.g. in the host's network config, then render again` };
  const own = parseIpv4(address.local) ?? 0;
  const cidr = { network: (own & maskOf(address.prefixlen)) >>> 0, prefix: address.prefixlen };
  if (!cidrContains(cidr, parseIpv4(ha.peer) ?? 0)) {
    return {
      check,
      severity: 'warn',
      summary: `ha.peer ${ha.peer} is not on the sync link's subnet (${address.local}/${address.prefixlen}): the state channel and conntrackd reach it by another route, or not at all`,
      fix: `address ${ha.interface} and the peer's sync link on one subnet, or correct ha.peer`,
    };
  }
  return { check, severity: 'ok', summary: `sync link ${ha.interface} is up, ${address.local}/${address.prefixlen}, peer ${ha.peer}` };
}

function keyFinding(ha: NonNullable<Config['ha']>, key: HaDoctorFacts['key']): Finding {
  const check = 'ha:key';
  const write = `write one on this gateway and the same on the peer: openssl rand -hex 32 > ${ha.keyFile}; chmod 600 ${ha.keyFile}`;
  if ('error' in key) return { check, severity: 'fail', summary: `ha.key ${ha.keyFile} cannot be read (${key.error}): the state channel does not start`, fix: write };
  if (key.length === 0) return { check, severity: 'fail', summary: `ha.key ${ha.keyFile} is empty: the state channel does not start`, fix: write };
  if (key.length < MIN_KEY_LENGTH) return { check, severity: 'fail', summary: `ha.key ${ha.keyFile} holds ${key.length} characters, fewer than ${MIN_KEY_LENGTH}: the state channel does not start`, fix: write };
  if ((key.mode & 0o077) !== 0) {
    // The daemon refuses it (readHaKey), so this is a failure, not only a leak.
    return {
      check,
      severity: 'fail',
      summary: `ha.key ${ha.keyFile} may be read by group or others (mode ${(key.mode & 0o777).toString(8)}): the daemon refuses such a key, so the state channel does not start`,
      fix: `chmod 600 ${ha.keyFile}`,
    };
  }
  return { check, severity: 'ok', summary: `ha.key ${ha.keyFile} holds a key only its owner may read` };
}

/** What the running daemon says of the pair: a role keepalived never gave, a master whose backup is not kept up to date. */
function daemonFindings(daemon: Status['ha'] | null): Finding[] {
  if (!daemon) return [];
  const check = 'ha:role';
  if (daemon.role === 'unknown') {
    return [
      {
        check,
        severity: 'warn',
        summary: 'keepalived has not told the running daemon its role: it stays fenced and forwards nothing',
        fix: 'check that keepalived runs with the rendered keepalived.conf and may run its notify script (its log says when it refuses one); keepalived with a pid file elsewhere than the printed command says cannot tell a restarted dispatcher its role: run `dispatcher ha master` or `ha backup` as keepalived has it',
      },
    ];
  }
  if (daemon.role === 'master' && !daemon.sending) {
    return [
      {
        check,
        severity: 'warn',
        summary: `master, but the state channel to ${daemon.peer} is down${daemon.problem ? ` (${daemon.problem})` : ''}: the backup is not kept up to date`,
        fix: "check the peer's dispatcher runs, the sync link, and that both gateways hold the same ha.key",
      },
    ];
  }
  // `=== false`: a daemon from before the field answers without it.
  if (daemon.role === 'backup' && daemon.hearing === false) {
    return [
      {
        check,
        severity: 'warn',
        summary: `backup, but the master's state channel is not reaching it: it is not kept up to date (a takeover would move clients)`,
        fix: "check the master's dispatcher runs, the sync link, and that both gateways hold the same ha.key",
      },
    ];
  }
  if (daemon.role === 'fault') {
    return [
      {
        check,
        severity: 'warn',
        summary: 'fault: keepalived found this gateway unfit (its LAN link down?): fenced, it cannot take over',
        fix: "check the LAN interface's link, and keepalived's log for why",
      },
    ];
  }
  return [{ check, severity: 'ok', summary: `the daemon is ${daemon.role}${daemon.role === 'master' ? `, sending to ${daemon.peer}` : daemon.role === 'backup' ? ', hearing the master' : ''}` }];
}

/** Nothing for a gateway that stands alone. */
export function haFindings(config: Config, links: readonly Link[], facts: HaDoctorFacts | null): Finding[] {
  if (!config.ha || !facts) return [];
  return [...renderedFindings(facts), keepalivedFinding(facts), conntrackdFinding(facts), syncLinkFinding(config.ha, links), keyFinding(config.ha, facts.key), daemonFindings(facts.daemon)].flat();
}
