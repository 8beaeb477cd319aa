import type { Command } from 'commander';
import { computePlan } from '../../core/run.js';
import { loadBackend } from '../../engine/backend.js';
import { gatherInputs } from '../../engine/inputs.js';
import { describeKernelPayloads, renderKernelPayloads } from '../../render/payloads.js';
import { clientsOf, Store, type StoreError } from '../../system/store.js';
import { configFor, printJson, type CliContext } from '../context.js';

export function registerPlan(program: Command, ctx: CliContext): void {
  program
    .command('plan')
    .description('print what the daemon would load into the kernel now; changes nothing and needs no root')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const configured = await configFor(ctx);
      const notes: string[] = [];
      const data = await Store.peek(configured.state).catch((error: StoreError) => {
        notes.push(`store not readable (${error.detail}): planning with no known clients`);
        return null;
      });
      const now = Date.now();
      // The same gathering as the daemon's runs (engine/inputs.ts), with the stored ranges, so an edited
      // tables.base or rules.priority shows the removals the daemon will make; what needs root is read if it can be.
      const backend = await loadBackend(configured);
      const inputs = await gatherInputs(ctx.runner, { backend, config: configured, stored: data, scan: true, now, partial: true });
      const { config, uplinks, unreadable } = inputs;
      if (unreadable.length > 0) notes.push(`could not read ${unreadable.join(', ')} (run as root to diff against them): treated as empty`);
      notes.push('uplinks judged by their links only: probes run in the daemon');
      const run = computePlan({
        config,
        uplinks,
        uplinks6: inputs.uplinks6,
        previous: inputs.previous,
        observed: inputs.routing,
        ...(data ? clientsOf(data) : { assignments: new Map(), lastSeen: new Map() }),
        neighbours: inputs.neighbours ?? [],
        complete: inputs.neighbours !== null,
        now,
      });
      const payloads = renderKernelPayloads(backend.plan(run.desired.netfilter, inputs.netfilter), run.routing);
      const { added, moved, expired } = run.assignment;
      if (options.json) {
        printJson(ctx, { notes, uplinks, assignments: { added, moved, expired }, conflicts: run.routing.conflicts, payloads });
        return;
      }
      const lines = [
        ...notes.map((n) => `# note: ${n}`),
        ...uplinks.map((u) => `# uplink ${u.name} (${u.interface}): ${u.state}, ${u.reason}`),
        ...added.map((a) => `# new client ${a.ip} -> ${a.uplink}`),
        ...moved.map((m) => `# client ${m.ip} moves ${m.from} -> ${m.uplink} (uplink no longer configured)`),
        ...(expired.length > 0 ? [`# ${expired.length} absent clients expire`] : []),
        ...run.routing.conflicts.map((c) => `# conflict: ${c}`),
      ];
      ctx.out(`${lines.join('\n')}\n\n${describeKernelPayloads(backend.describe, payloads)}`);
    });
}
