// A real BIND 9 in the lab's internet namespace: one dynamic zone that accepts
// RFC 2136 updates signed with a TSIG key, for the dynamic DNS tests and the
// lab. named runs in the foreground (-g) with everything in its own directory,
// so nothing of the machine's BIND setup is used or changed.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Process, Runner } from '../system/exec.js';
import { waitFor } from './harness.js';
import { inNamespace, type Topology } from './topology.js';

export const DNS_ADDRESS = '203.0.113.53';
export const DNS_ZONE = 'example.test';
export const DNS_KEY_NAME = 'dispatcher-ddns';

export interface DnsServer {
  readonly process: Process;
  readonly address: string;
  readonly zone: string;
  /** The TSIG key file the server trusts (give it to ddns.key). */
  readonly keyFile: string;
  /** What named printed. */
  readonly logs: string[];
  /** The name's A (or AAAA) records as the server answers them, sorted. */
  records(name: string, type?: 'A' | 'AAAA'): Promise<string[]>;
  /** The zone's SOA serial: it changes with every accepted update. */
  serial(): Promise<number>;
  stop(): Promise<void>;
}

function namedConf(dir: string, address: string): string {
  return `options {
  directory "${dir}";
  pid-file "${dir}/named.pid";
  session-keyfile "${dir}/session.key";
  managed-keys-directory "${dir}";
  listen-on port 53 { ${address}; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
};
controls { };
include "${dir}/ddns.key";
zone "${DNS_ZONE}" {
  type primary;
  file "${dir}/${DNS_ZONE}.zone";
  allow-update { key "${DNS_KEY_NAME}"; };
};
`;
}

const ZONE = `$TTL 60
@   IN SOA ns.${DNS_ZONE}. hostmaster.${DNS_ZONE}. 1 60 60 600 60
@   IN NS  ns.${DNS_ZONE}.
ns  IN A   ${DNS_ADDRESS}
`;

/** Starts named on DNS_ADDRESS in the internet namespace, with a fresh key and zone under `dir`. */
export async function startDnsServer(runner: Runner, topo: Pick<Topology, 'inet'>, dir: string): Promise<DnsServer> {
  await mkdir(dir, { recursive: true });
  const key = await runner.run(['tsig-keygen', '-a', 'hmac-sha256', DNS_KEY_NAME]);
  const keyFile = join(dir, 'ddns.key');
  await writeFile(keyFile, key.stdout, { mode: 0o600 });
  await writeFile(join(dir, 'named.conf'), namedConf(dir, DNS_ADDRESS));
  await writeFile(join(dir, `${DNS_ZONE}.zone`), ZONE);
  await runner.run(['ip', '-n', topo.inet, 'addr', 'replace', `${DNS_ADDRESS}/32`, 'dev', 'lo']);
  const logs: string[] = [];
  const named = runner.spawn(inNamespace(topo.inet, ['named', '-g', '-4', '-n', '1', '-c', join(dir, 'named.conf')]), { onErrorLine: (line) => logs.push(line), onLine: (line) => logs.push(line) });
  let exited = false;
  void named.ended.then(() => (exited = true));
  await waitFor('named to load the zone', 15_000, async () => {
    if (exited) throw new Error(`named exited:\n${logs.join('\n')}`);
    return logs.some((line) => line.includes('running')) ? true : null;
  }).catch((error: Error) => {
    named.stop('SIGKILL');
    throw new Error(`${error.message}\n${logs.slice(-20).join('\n')}`);
  });
  const dig = (args: readonly string[]): Promise<string> => runner.run(inNamespace(topo.inet, ['dig', '+short', '+time=2', '+tries=1', `@${DNS_ADDRESS}`, ...args])).then((r) => r.stdout);
  return {
    process: named,
    address: DNS_ADDRESS,
    zone: DNS_ZONE,
    keyFile,
    logs,
    records: async (name, type = 'A') =>
      (await dig([name, type]))
        .split('\n')
        .filter((l) => (type === 'A' ? /^[0-9.]+$/ : /^[0-9a-f:]+$/).test(l))
        .sort(),
    serial: async () => Number((await dig([DNS_ZONE, 'SOA'])).trim().split(/\s+/)[2]),
    stop: async () => {
      named.stop('SIGTERM');
      await named.ended;
    },
  };
}
