// The netfilter backend the product runs with, built once from the contract
// data shipped in iptables/ (read by src/system/, since backends open no
// files). Only iptables + ipset exists today; the nftables issue adds the
// choice (a config key and a detector) here and in src/backends/index.ts.

import type { NetfilterBackend } from '../backends/backend.js';
import { createBackend, DEFAULT_BACKEND } from '../backends/index.js';
import { readSkeleton } from '../system/skeleton.js';

export async function loadBackend(): Promise<NetfilterBackend> {
  return createBackend(DEFAULT_BACKEND, { skeleton: await readSkeleton() });
}
