// The netfilter backends the product runs with, built from the contract data
// shipped in iptables/ (read by src/system/, since backends open no files):
// the one the config chooses, and the others, whose objects a switch of
// backend leaves behind until the first run (or flush) removes them.

import type { BackendName, NetfilterBackend } from '../backends/backend.js';
import { BACKENDS, createBackend } from '../backends/index.js';
import type { Config } from '../model/config.js';
import { readSkeleton } from '../system/skeleton.js';

export async function loadBackend(config: Pick<Config, 'netfilter'>): Promise<NetfilterBackend> {
  return (await loadBackends(config))[0];
}

/** The configured backend first, then the others. */
export async function loadBackends(config: Pick<Config, 'netfilter'>): Promise<[NetfilterBackend, ...NetfilterBackend[]]> {
  const data = { skeleton: await readSkeleton() };
  const chosen: BackendName = config.netfilter.backend;
  return [createBackend(chosen, data), ...BACKENDS.filter((name) => name !== chosen).map((name) => createBackend(name, data))];
}
