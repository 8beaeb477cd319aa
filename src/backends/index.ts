// Picks the netfilter backend. Only iptables + ipset exists today; the
// nftables backend and the `netfilter.backend` config key that chooses
// between them come with it (issue 14).

import type { BackendName, NetfilterBackend } from './backend.js';
import { iptablesBackend } from './iptables/index.js';
import { parseSkeleton } from './iptables/skeleton.js';

export const DEFAULT_BACKEND: BackendName = 'iptables';

/** The contract data a backend is built from, loaded by src/system/ (backends open no files). */
export interface BackendData {
  /** The text of iptables/skeleton.rules (parsed here: a broken file is a SkeletonError naming its line). */
  readonly skeleton: string;
}

export function createBackend(name: BackendName, data: BackendData): NetfilterBackend {
  switch (name) {
    case 'iptables':
      return iptablesBackend(parseSkeleton(data.skeleton));
  }
}
