// The probe targets a config can name, as the schema reads them, and the id
// each is known by in the health records, status, metrics and logs (pure).
// A plain address (or an uplink's gateway) is probed with ICMP echo.

export type ProbeTargetConfig =
  | { readonly method: 'icmp'; readonly address: string }
  | { readonly method: 'tcp'; readonly address: string; readonly port: number }
  | { readonly method: 'http'; readonly url: string; readonly expect: number | null; readonly contains?: string; readonly insecure: boolean }
  | { readonly method: 'dns'; readonly server: string; readonly query: string; readonly type: 'A' | 'AAAA' | 'NS' | 'SOA' | 'MX' | 'TXT' | 'CNAME' };

/** What a target is called: its address for ICMP, else the method and what it asks. */
export function targetId(target: ProbeTargetConfig | string): string {
  if (typeof target === 'string') return target;
  switch (target.method) {
    case 'icmp':
      return target.address;
    case 'tcp':
      return `tcp ${target.address}:${target.port}`;
    case 'http':
      return target.url;
    case 'dns':
      return `dns ${target.server} ${target.query}${target.type === 'A' ? '' : ` ${target.type}`}`;
  }
}
