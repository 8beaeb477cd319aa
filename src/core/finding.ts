// A doctor finding: one check's verdict, with what to do about it.

export type Severity = 'ok' | 'info' | 'warn' | 'fail';

export interface Finding {
  /** Stable id of the check, e.g. "tool:ipset", "sysctl:rp_filter:ppp0". */
  readonly check: string;
  readonly severity: Severity;
  readonly summary: string;
  readonly fix?: string;
}
