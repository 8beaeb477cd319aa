// Builds a netfilter backend by name (netfilter.backend in the config).

import type { BackendName, NetfilterBackend } from './backend.js';
import { iptablesBackend } from './iptables/index.js';
import { parseSkeleton } from './iptables/skeleton.js';
import { nftablesBackend } from './nftables/index.js';

export const BACKENDS: readonly BackendName[] = ['iptables', 'nftables'];

/** The contract data a backend is built from, loaded by src/system/ (backends open no files). */
export interface BackendData {
  /** The text of iptables/skeleton.rules (parsed here: a broken file is a SkeletonError naming its line). */
  readonly skeleton: string;
}

export function createBackend(name: BackendName, data: BackendData): NetfilterBackend {
  switch (name) {
    case 'iptables':
      return iptablesBackend(parseSkeleton(data.skeleton));
    case 'nftables':
      return nftablesBackend();
  }
}
