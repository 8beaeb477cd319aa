// The daemon's own traffic to the internet, each command run with an uplink's
// group so it leaves by that uplink (iptables/skeleton.rules, `--gid-owner`):
// the public-address lookup (http-get.js), and the DNS query and update (dig,
// nsupdate). Only the outcome is returned; judging it is core's.

import { fileURLToPath } from 'node:url';
import type { RecordType } from '../core/ddns.js';
import type { DdnsConfig } from '../model/config.js';
import { whatItSaid, type Runner } from './exec.js';

const HTTP_GET = fileURLToPath(new URL('./http-get.js', import.meta.url));
/** An address answer is a few bytes; anything this long is not one. */
const MAX_ANSWER_BYTES = 4096;

export type Outcome = { readonly ok: true; readonly output: string } | { readonly ok: false; readonly error: string };

async function attempt(run: () => Promise<{ stdout: string }>): Promise<Outcome> {
  try {
    return { ok: true, output: (await run()).stdout };
  } catch (error) {
    return { ok: false, error: whatItSaid(error) };
  }
}

/** GETs a URL through the uplink whose group is `gid`. */
export function fetchThrough(runner: Runner, gid: number, url: string, timeoutMs: number): Promise<Outcome> {
  return attempt(() => runner.run([process.execPath, HTTP_GET, url, String(timeoutMs), String(MAX_ANSWER_BYTES)], { gid, timeoutMs: timeoutMs + 2000 }));
}

/** Asks the server what records of a type the name has (not signed: reading a zone needs no key). */
export function queryRecords(runner: Runner, gid: number, config: DdnsConfig, type: RecordType = 'A'): Promise<Outcome> {
  const seconds = Math.max(1, Math.round(config.timeoutMs / 2000));
  return attempt(() =>
    runner.run(['dig', '+noall', '+comments', '+answer', `+time=${seconds}`, '+tries=2', '-p', String(config.port), `@${config.server}`, `${config.name}.`, type], {
      gid,
      timeoutMs: config.timeoutMs + 2000,
      // 9 is "no reply": its output says why, and core/ddns.ts reads it as an error.
      okExitCodes: [0, 9],
    }),
  );
}

/** Sends one signed update transaction (the script from core/ddns.ts) on stdin. */
export function sendUpdate(runner: Runner, gid: number, config: DdnsConfig, script: string): Promise<Outcome> {
  const seconds = Math.max(1, Math.round(config.timeoutMs / 1000));
  return attempt(() =>
    runner.run(['nsupdate', '-k', config.keyFile, '-t', String(seconds), '-u', String(Math.max(1, Math.floor(seconds / 3))), '-r', '2'], {
      input: script,
      gid,
      timeoutMs: config.timeoutMs * 3 + 2000,
    }),
  );
}
